// Fails on high or critical advisories in production dependencies. Where the registry's
// advisory service cannot be reached (a mirror or proxy that only serves packages), says so
// and passes: no answer is not a finding, and the install itself came from the lockfile.
import { execFileSync } from 'node:child_process';

let text;
try {
  text = execFileSync('npm', ['audit', '--omit=dev', '--json'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
} catch (error) {
  text = error.stdout ?? ''; // npm audit exits 1 when it finds anything
}
let report;
try {
  report = JSON.parse(text);
} catch {
  report = { message: 'no JSON from npm audit' };
}
const counts = report.metadata?.vulnerabilities;
if (!counts) {
  // Only an answer from the service (an HTTP status) or a network failure counts as "cannot
  // be reached"; anything else (no lockfile, a broken report) fails the step.
  const unreachable =
    typeof report.statusCode === 'number' ||
    /^(E\d{3}|ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EAI_AGAIN)$/.test(report.code ?? '');
  if (!unreachable) {
    console.error(`audit: npm audit failed: ${report.message ?? 'no report'}`);
    process.exit(1);
  }
  console.log(`audit: advisory service unavailable (${report.statusCode ?? report.code}); skipped`);
  process.exit(0);
}
const serious = (counts.high ?? 0) + (counts.critical ?? 0);
console.log(`audit: ${JSON.stringify(counts)}`);
if (serious > 0) {
  console.error(`audit: ${serious} high or critical advisories in production dependencies`);
  process.exit(1);
}
