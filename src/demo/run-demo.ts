#!/usr/bin/env node
/**
 * `npm run demo`: the whole job on one machine with no credentials. Starts the local DataFramer
 * simulator and a verifying webhook receiver on 127.0.0.1, runs the real watcher (dist/main.js)
 * against them until every run has finished and every webhook has landed, then prints a summary.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoReceiver } from './receiver.js';
import { generateScenario, type Outcome } from './scenario.js';
import { Simulator } from './simulator.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const API_KEY = `demo-${randomBytes(8).toString('hex')}`;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
// Mixed outcomes, fixed so every demo shows each kind of ending.
const OUTCOMES: Outcome[] = [
  'SUCCEEDED',
  'SUCCEEDED',
  'FAILED',
  'SUCCEEDED',
  'CANCELED',
  'SUCCEEDED',
];

interface WebhookData {
  run_id: string;
  status: string | null;
  samples_completed: number | null;
  samples_failed: number | null;
  total_cost: number | null;
  generated_files: unknown[];
}

async function main(): Promise<number> {
  const scenario = generateScenario({
    seed: 2026,
    count: OUTCOMES.length,
    startSpreadMs: 0,
    minDurationMs: 12_000,
    maxDurationMs: 40_000,
  });
  scenario.runs.forEach((run, i) => {
    run.outcome = OUTCOMES[i] ?? 'SUCCEEDED';
    run.failedRatio = run.outcome === 'FAILED' ? 0.4 : 0.02;
  });

  const simulator = new Simulator({
    scenario,
    apiKey: API_KEY,
    faults: { serverErrorRate: 0.05, rateLimitRate: 0.02 },
  });
  const receiver = new DemoReceiver({
    secret: SECRET,
    print: (line) => console.log(`  receiver ${line}`),
  });
  const baseUrl = await simulator.listen();
  const receiverUrl = await receiver.listen();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'dataframer-demo-'));
  console.log(`Simulated DataFramer API at ${baseUrl}, webhook receiver at ${receiverUrl}`);
  console.log(`Watching ${scenario.runs.length} runs; they finish within about 40 s.\n`);

  const watcher = spawn(process.execPath, [MAIN], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      PATH: process.env['PATH'] ?? '',
      DATAFRAMER_API_KEY: API_KEY,
      DATAFRAMER_BASE_URL: baseUrl,
      WATCH_RUN_IDS: scenario.runs.map((r) => r.runId).join(','),
      WEBHOOK_URLS: receiverUrl,
      WEBHOOK_SECRET: SECRET,
      POLL_CRON: '* * * * * *',
      POLL_MIN_INTERVAL_MS: '1000',
      POLL_MAX_INTERVAL_MS: '5000',
      STATE_DIR: stateDir,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      EXIT_WHEN_DONE: 'true',
      LOG_FORMAT: 'pretty',
    },
  });
  const forward = (signal: NodeJS.Signals) => watcher.kill(signal);
  process.once('SIGINT', forward).once('SIGTERM', forward);
  const watcherExit = await new Promise<number | null>((resolve) =>
    watcher.on('exit', (code) => resolve(code)),
  );

  await Promise.all([simulator.close(), receiver.close()]);
  rmSync(stateDir, { recursive: true, force: true });

  const delivered = new Map(
    receiver.deliveries.map((d) => [
      (d.body as { data: WebhookData }).data.run_id,
      (d.body as { data: WebhookData }).data,
    ]),
  );
  console.log('\nSummary');
  console.table(
    scenario.runs.map((run) => {
      const data = delivered.get(run.runId);
      return {
        run: `${run.runId.slice(0, 8)}…`,
        status: data?.status ?? '(none)',
        samples: data ? `${data.samples_completed} ok / ${data.samples_failed} failed` : '-',
        cost: data?.total_cost == null ? '-' : `$${data.total_cost.toFixed(2)}`,
        files: data?.generated_files.length ?? 0,
        delivered: data ? 'yes' : 'NO',
      };
    }),
  );
  const allDelivered = scenario.runs.every((run) => delivered.has(run.runId));
  // The watcher exits 1 because some runs did not succeed; the demo succeeds when it saw them all.
  console.log(
    allDelivered
      ? `All ${scenario.runs.length} runs reported and delivered (watcher exit code ${watcherExit}: 1 means some runs did not succeed).`
      : 'Some runs were not delivered.',
  );
  return allDelivered && (watcherExit === 0 || watcherExit === 1) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
