import { afterEach, describe, expect, it } from '@jest/globals';
import { DemoReceiver } from '../../src/demo/receiver.js';
import { generateScenario, type Scenario } from '../../src/demo/scenario.js';
import { Simulator } from '../../src/demo/simulator.js';
import { startWatcher, type WatcherProcess } from '../helpers/watcher-process.js';

const API_KEY = 'df_integration_key_1234';
const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function world(scenario: Scenario, faults = {}) {
  const simulator = new Simulator({ scenario, apiKey: API_KEY, faults, seed: 7 });
  const baseUrl = await simulator.listen();
  const receiver = new DemoReceiver({ secret: SECRET });
  const receiverUrl = await receiver.listen();
  cleanups.push(
    () => simulator.close(),
    () => receiver.close(),
  );
  return { simulator, receiver, baseUrl, receiverUrl };
}

function watch(baseUrl: string, receiverUrl: string, runIds: string[]): WatcherProcess {
  const watcher = startWatcher({
    DATAFRAMER_API_KEY: API_KEY,
    DATAFRAMER_BASE_URL: baseUrl,
    WATCH_RUN_IDS: runIds.join(','),
    WEBHOOK_URLS: receiverUrl,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_SCHEDULE_MS: '50,100,200',
    POLL_CRON: '* * * * * *',
    POLL_MIN_INTERVAL_MS: '200',
    POLL_MAX_INTERVAL_MS: '1000',
    EXIT_WHEN_DONE: 'true',
    STATE_DIR: ':memory:',
  });
  cleanups.push(async () => {
    watcher.kill('SIGKILL');
    await watcher.exited;
  });
  return watcher;
}

describe('the watcher process against a local API and receiver', () => {
  it('reports each of 20 runs once, delivers one verified webhook each, and exits 1 when some failed', async () => {
    const scenario = generateScenario({
      seed: 20,
      count: 20,
      startSpreadMs: 0,
      minDurationMs: 1_000,
      maxDurationMs: 4_000,
    });
    const { simulator, receiver, baseUrl, receiverUrl } = await world(scenario, {
      serverErrorRate: 0.1,
      resetRate: 0.05,
    });
    const watcher = watch(
      baseUrl,
      receiverUrl,
      scenario.runs.map((r) => r.runId),
    );

    expect(await watcher.exited).toBe(1);
    const finished = watcher.byEvent('run.finished');
    expect(finished.map((l) => l.run_id).sort()).toEqual(scenario.runs.map((r) => r.runId).sort());
    for (const run of scenario.runs) {
      const line = finished.find((l) => l.run_id === run.runId)!;
      expect(line).toMatchObject({ level: 'info', status: run.outcome, msg: 'run finished' });
      expect(typeof line.samples_completed).toBe('number');
      expect(line).toHaveProperty('total_cost');
      expect(line).toHaveProperty('generated_files');
    }
    expect(scenario.runs.some((r) => r.outcome !== 'SUCCEEDED')).toBe(true);

    const byRun = new Map(
      receiver.deliveries.map((d) => [
        (d.body as { data: { run_id: string } }).data.run_id,
        d.body,
      ]),
    );
    expect(receiver.deliveries).toHaveLength(20);
    expect(receiver.rejected).toBe(0);
    for (const run of scenario.runs) {
      expect(byRun.get(run.runId)).toMatchObject({
        type: `run.${run.outcome.toLowerCase()}`,
        data: { status: run.outcome },
      });
    }
    // Transient faults were met and survived.
    expect(simulator.requests.some((r) => r.fault !== null)).toBe(true);
    // No run was polled after the watcher saw it finish.
    for (const run of scenario.runs) {
      const served = simulator.requests.filter((r) => r.runId === run.runId && r.status === 200);
      const terminalIndex = served.findIndex((r) => r.runStatus === run.outcome);
      expect(terminalIndex).toBe(served.length - 1);
    }
  });

  it('exits 0 when every run succeeded', async () => {
    const scenario = generateScenario({
      seed: 3,
      count: 5,
      startSpreadMs: 0,
      minDurationMs: 500,
      maxDurationMs: 1_500,
      outcomes: { SUCCEEDED: 1 },
    });
    const { receiver, baseUrl, receiverUrl } = await world(scenario);
    const watcher = watch(
      baseUrl,
      receiverUrl,
      scenario.runs.map((r) => r.runId),
    );
    expect(await watcher.exited).toBe(0);
    expect(receiver.deliveries).toHaveLength(5);
    expect(watcher.byEvent('watcher.stopped')).toHaveLength(1);
  });
});
