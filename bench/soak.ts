import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Faults } from '../src/demo/faults.js';
import { readProc } from './proc-stats.js';
import { exitWithin, LogTail, sleep, startNode, type Child } from './processes.js';
import { fixed, machine, mb, met, table } from './report.js';
import { max, median } from './stats.js';
import {
  API_KEY,
  readJson,
  SECRET,
  watcherEnv,
  writeRunList,
  type ReceiverLog,
  type RequestLog,
} from './world.js';

export const SOAK_RUNS = 1_000;
export const SOAK_DEFAULT_MINUTES = 10;
/** A few percent of the API's answers go wrong, each in its own way. */
export const SOAK_FAULTS = {
  serverErrorRate: 0.03,
  rateLimitRate: 0.02,
  retryAfterSeconds: 2,
  resetRate: 0.01,
  malformedRate: 0.01,
} as const satisfies Faults;
/** Share of webhook-ids whose first attempt the receiver answers 500. */
export const RECEIVER_FAIL_RATE = 0.1;
/** Rate and concurrency well above what 1,000 runs polled every 2-20 s need. */
export const SOAK_ENV = {
  POLL_MIN_INTERVAL_MS: '2000',
  POLL_MAX_INTERVAL_MS: '20000',
  POLL_RATE_PER_SECOND: '500',
  POLL_CONCURRENCY: '32',
} as const;
/** ≈ 173 s, so retention prunes during the soak; 1 (day) if the watcher refuses fractions. */
const RETENTION_DAYS = ['0.002', '1'] as const;
const SAMPLE_MS = 10_000;
const STORE_EVERY = 6; // samples: once a minute
/** RSS is compared over 3 samples (20 s) from the end of the warm-up and at the end. */
const RSS_SAMPLES = 3;
const STORE_LAST = 3; // minutes
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

export interface SoakResult {
  minutes: number;
  warmUpSeconds: number;
  retentionDays: string;
  /** The watcher's stderr line when it refused the first RETENTION_DAYS, else null. */
  retentionRefused: string | null;
  retentionLines: number;
  rssBytes: number[];
  rssWarmBytes: number;
  rssEndBytes: number;
  hwmBytes: number;
  cpuSeconds: number;
  storeBytes: number[];
  exit: number | string;
  runsFinished: number;
  runsSeenEnded: number;
  pollsAfterTerminal: number;
  apiRequests: number;
  apiFaults: Record<string, number>;
  attempts: number;
  refused500: number;
  delivered: number;
  duplicates: number;
  /** Finished runs with exactly one webhook-id at the receiver, none, or more than one. */
  deliveredOnce: number;
  notDelivered: number;
  deliveredTwice: number;
}

function storeSize(stateDir: string): number {
  const file = path.join(stateDir, 'watcher.sqlite');
  return [file, `${file}-wal`].reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0);
}

/**
 * Runs seen ended, and polls after that: from the first clean answer (200, no fault) that showed
 * the end. A malformed body stands for a status too, but the watcher cannot read it, so polls on.
 */
function endsSeen(requests: RequestLog): { runs: number; pollsAfter: number } {
  const seen = new Set<string>();
  let pollsAfter = 0;
  for (const r of requests.requests) {
    const id = r.runId?.toLowerCase();
    if (id === undefined) continue;
    if (seen.has(id)) pollsAfter++;
    else if (r.status === 200 && r.fault === null && TERMINAL.has(r.runStatus ?? '')) seen.add(id);
  }
  return { runs: seen.size, pollsAfter };
}

/** Starts the watcher; on exit 78 (a setting refused) with the first retention, the second. */
async function startWatcher(
  dir: string,
  env: (retentionDays: string) => Record<string, string>,
): Promise<{ watcher: Child; retentionDays: string; refused: string | null }> {
  let refused: string | null = null;
  for (const retentionDays of RETENTION_DAYS) {
    const watcher = startNode(`watcher-${retentionDays}`, 'main.js', [], env(retentionDays), dir);
    try {
      await watcher.waitForEvent('watcher.started', 60_000);
      return { watcher, retentionDays, refused };
    } catch (error) {
      if ((await exitWithin(watcher, 1_000)) !== 78) throw error;
      refused = readFileSync(watcher.stderrFile, 'utf8').trim().split('\n')[0] ?? 'exit 78';
    }
  }
  throw new Error(`the watcher refused every RETENTION_DAYS: ${refused}`);
}

/**
 * 1,000 runs, all started at once, each 30 s to (minutes − 1) min long, so that runs keep ending
 * until a minute before the stop. One watcher polls them for `minutes` against a simulator with
 * faults and a receiver that fails 10% of first attempts; RSS every 10 s, the store every minute.
 */
export async function runSoak(
  baseDir: string,
  minutes: number,
  log: (line: string) => void,
): Promise<SoakResult> {
  const dir = path.join(baseDir, 'soak');
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir, { recursive: true });
  const requestLog = path.join(dir, 'requests.json');
  const sim = startNode(
    'simulator',
    'demo/simulator-cli.js',
    [
      ...['--seed', '1000', '--count', String(SOAK_RUNS), '--spread-ms', '0'],
      ...['--min-ms', '30000', '--max-ms', String((minutes - 1) * 60_000)],
      ...['--faults', JSON.stringify(SOAK_FAULTS), '--request-log', requestLog],
      ...['--api-key', API_KEY],
    ],
    {},
    dir,
  );
  const simLine = await sim.waitForEvent('simulator.listening', 30_000);
  const receiverLog = path.join(dir, 'receiver.json');
  const receiver = startNode(
    'receiver',
    'bench/bench/soak-receiver.js',
    ['--secret', SECRET, '--log', receiverLog, '--fail-rate', String(RECEIVER_FAIL_RATE)],
    {},
    dir,
  );
  const receiverLine = await receiver.waitForEvent('receiver.listening', 30_000);
  const configFile = path.join(dir, 'watcher.json');
  writeRunList(configFile, simLine['runs'] as string[]);
  const { watcher, retentionDays, refused } = await startWatcher(dir, (retention) =>
    watcherEnv(String(simLine['url']), String(receiverLine['url']), configFile, stateDir, {
      ...SOAK_ENV,
      RETENTION_DAYS: retention,
    }),
  );
  if (refused) log(`  soak: RETENTION_DAYS=${RETENTION_DAYS[0]} refused (${refused})`);
  log(`  soak: watcher started with RETENTION_DAYS=${retentionDays}`);

  const rssBytes: number[] = [];
  const storeBytes: number[] = [];
  const start = Date.now();
  let last = readProc(watcher.pid);
  for (let tick = 1; tick <= (minutes * 60_000) / SAMPLE_MS; tick++) {
    await sleep(start + tick * SAMPLE_MS - Date.now());
    last = readProc(watcher.pid);
    if (!last) throw new Error(`the watcher exited during the soak; see ${watcher.stderrFile}`);
    rssBytes.push(last.rssBytes);
    let line = `  soak: ${tick * 10} s, RSS ${mb(last.rssBytes)} MB, CPU ${fixed(last.cpuSeconds)} s`;
    if (tick % STORE_EVERY === 0) {
      storeBytes.push(storeSize(stateDir));
      line += `, store ${mb(storeBytes.at(-1) ?? NaN)} MB`;
    }
    log(line);
  }
  const stoppedAt = Date.now();
  watcher.process.kill('SIGTERM');
  const exit = await exitWithin(watcher, 30_000);
  await Promise.all([sim.stop(), receiver.stop()]);

  const requests = readJson<RequestLog>(requestLog);
  const received = readJson<ReceiverLog & { failed: number }>(receiverLog);
  const finished = requests.runs.filter((r) => r.finishedAt <= stoppedAt);
  const ends = endsSeen(requests);
  const webhookIds = new Map<string, Set<string>>();
  for (const d of received.deliveries) {
    const id = d.body.data?.run_id?.toLowerCase() ?? '';
    webhookIds.set(id, (webhookIds.get(id) ?? new Set()).add(d.webhookId));
  }
  const idsOf = (runId: string) => webhookIds.get(runId.toLowerCase())?.size ?? 0;
  const apiFaults: Record<string, number> = {};
  for (const r of requests.requests) {
    if (r.fault !== null) apiFaults[r.fault] = (apiFaults[r.fault] ?? 0) + 1;
  }
  const warmUpSeconds = Math.min(120, 10 * Math.round((minutes * 6) / 4));
  const warmIndex = warmUpSeconds / 10 - 1;
  return {
    minutes,
    warmUpSeconds,
    retentionDays,
    retentionRefused: refused,
    retentionLines: new LogTail(watcher.stdoutFile)
      .read()
      .filter((l) => /retention|prune/.test(String(l['event']))).length,
    rssBytes,
    rssWarmBytes: median(rssBytes.slice(warmIndex, warmIndex + RSS_SAMPLES)),
    rssEndBytes: median(rssBytes.slice(-RSS_SAMPLES)),
    hwmBytes: last?.hwmBytes ?? NaN,
    cpuSeconds: last?.cpuSeconds ?? NaN,
    storeBytes,
    exit,
    runsFinished: finished.length,
    runsSeenEnded: ends.runs,
    pollsAfterTerminal: ends.pollsAfter,
    apiRequests: requests.requests.length,
    apiFaults,
    attempts: received.attempts,
    refused500: received.failed,
    delivered: received.deliveries.length,
    duplicates: received.duplicates,
    deliveredOnce: finished.filter((r) => idsOf(r.runId) === 1).length,
    notDelivered: finished.filter((r) => idsOf(r.runId) === 0).length,
    deliveredTwice: finished.filter((r) => idsOf(r.runId) > 1).length,
  };
}

/** The pass criteria: null where the soak was too short to judge. */
export function soakVerdicts(s: SoakResult) {
  const rssGrowth = (s.rssEndBytes - s.rssWarmBytes) / s.rssWarmBytes;
  const before = s.storeBytes.slice(0, -STORE_LAST);
  const lastMax = max(s.storeBytes.slice(-STORE_LAST));
  const storeGrowth = before.length >= 3 ? lastMax / max(before) - 1 : NaN;
  const deliveredOnce =
    s.deliveredOnce === s.runsFinished && s.duplicates === 0 && s.delivered === s.runsFinished;
  return { rssGrowth, storeGrowth, deliveredOnce };
}

export function soakTable(s: SoakResult): string {
  const v = soakVerdicts(s);
  const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
  const faults = Object.entries(s.apiFaults)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return table(
    ['figure', 'value', 'target', 'met'],
    [
      [
        'runs finished (API) / seen ended by the watcher',
        `${s.runsFinished} / ${s.runsSeenEnded}`,
        '',
        '',
      ],
      [
        'polls after the end was seen',
        String(s.pollsAfterTerminal),
        '0',
        met(s.pollsAfterTerminal === 0),
      ],
      [
        `RSS after ${s.warmUpSeconds} s warm-up / at the end (MB, median of 3)`,
        `${mb(s.rssWarmBytes)} / ${mb(s.rssEndBytes)}`,
        '',
        '',
      ],
      ['RSS growth after warm-up', pct(v.rssGrowth), '< 5%', met(v.rssGrowth < 0.05)],
      ['peak RSS, VmHWM (MB)', mb(s.hwmBytes), '', ''],
      [
        'CPU (s) / share of one core',
        `${fixed(s.cpuSeconds)} / ${fixed(s.cpuSeconds / (s.minutes * 60), 3)}`,
        '',
        '',
      ],
      [
        'store, max of the last 3 min vs the minutes before',
        pct(v.storeGrowth),
        '≤ 10%',
        Number.isFinite(v.storeGrowth) ? met(v.storeGrowth <= 0.1) : 'n/a (< 6 min)',
      ],
      [
        `retention: RETENTION_DAYS / lines logged`,
        `${s.retentionDays} / ${s.retentionLines}`,
        '',
        '',
      ],
      ['API requests / with a fault', `${s.apiRequests} / ${faults || 'none'}`, '', ''],
      [
        'receiver: attempts / first attempts answered 500',
        `${s.attempts} / ${s.refused500}`,
        '',
        '',
      ],
      [
        'webhooks delivered (distinct webhook-ids) / duplicates',
        `${s.delivered} / ${s.duplicates}`,
        '',
        '',
      ],
      [
        'finished runs with one webhook-id / none / more than one',
        `${s.deliveredOnce} / ${s.notDelivered} / ${s.deliveredTwice}`,
        `${s.runsFinished} / 0 / 0, no duplicate`,
        met(v.deliveredOnce),
      ],
      ['watcher exit code (SIGTERM at the end)', String(s.exit), '', ''],
    ],
  );
}

/** The RESULTS.md section: what was run, on what, the table and the series. */
export function soakSection(s: SoakResult): string {
  const refused = s.retentionRefused
    ? ` The watcher refused \`RETENTION_DAYS=${RETENTION_DAYS[0]}\` (exit 78: ${s.retentionRefused}), so this soak ran with \`RETENTION_DAYS=${s.retentionDays}\` and retention could not prune during it.`
    : '';
  return (
    `## Soak, ${s.minutes} minutes\n\n` +
    `Written by \`npm run bench -- soak${s.minutes === SOAK_DEFAULT_MINUTES ? '' : ` --minutes ${s.minutes}`}\`` +
    ` on ${new Date().toISOString().slice(0, 10)}. Machine: ${machine()
      .map(([k, val]) => `${k} ${val}`)
      .join(', ')}.\n\n` +
    `${SOAK_RUNS.toLocaleString('en')} runs, all started at once, each 30 s to ${s.minutes - 1} min long, ` +
    `polled for ${s.minutes} min by one watcher with ` +
    Object.entries({ ...SOAK_ENV, RETENTION_DAYS: s.retentionDays })
      .map(([k, val]) => `\`${k}=${val}\``)
      .join(', ') +
    `; the simulator's faults \`${JSON.stringify(SOAK_FAULTS)}\`; the receiver answers the first ` +
    `attempt of ${RECEIVER_FAIL_RATE * 100}% of the webhook-ids with 500. Then SIGTERM. RSS from ` +
    '`/proc/<pid>/status` every 10 s; the store is `watcher.sqlite` plus `-wal`, every minute. ' +
    'The store stops growing if the largest size of the last 3 minutes is within 10% of the ' +
    `largest before them.${refused}\n\n${soakTable(s)}\n\n` +
    `RSS every 10 s (MB): ${s.rssBytes.map(mb).join(', ')}\n\n` +
    `Store every minute (MB): ${s.storeBytes.map(mb).join(', ')}`
  );
}

/** `text` (RESULTS.md) with its Soak section replaced by `section`, or `section` appended. */
export function withSoakSection(text: string, section: string): string {
  const [before, after] = splitSoak(text);
  return `${[before.trimEnd(), section, after.trim()].filter(Boolean).join('\n\n')}\n`;
}

/** The Soak section of RESULTS.md, if it has one (kept when the other parts rewrite the file). */
export function soakSectionOf(text: string): string | null {
  const [before, after] = splitSoak(text);
  const section = text.slice(before.length, text.length - after.length).trim();
  return section === '' ? null : section;
}

function splitSoak(text: string): [string, string] {
  const start = text.search(/^## Soak/m);
  if (start === -1) return [text, ''];
  const next = text.slice(start + 1).search(/^## /m);
  return [text.slice(0, start), next === -1 ? '' : text.slice(start + 1 + next)];
}
