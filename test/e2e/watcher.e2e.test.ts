import { describe, expect, it } from '@jest/globals';
import type { WatcherProcess } from '../helpers/watcher-process.js';
import { API_KEY, SECRET, deliveredRunIds, useWorld } from '../helpers/world.js';

const world = useWorld();

function expectNoSecrets(watcher: WatcherProcess): void {
  const written = watcher.stdout() + watcher.stderr();
  expect(written).not.toContain(API_KEY);
  expect(written).not.toContain(SECRET);
  expect(written).not.toContain(SECRET.slice('whsec_'.length));
}

function sorted(ids: string[]): string[] {
  return [...ids].sort();
}

describe('end to end: the built program', () => {
  it('happy path: 50 runs, one run.finished line and one verified webhook each, exit code 1 for mixed outcomes', async () => {
    const { scenario, ids, receiver, watcher } = await world.scenario({
      runs: { seed: 50, count: 50, minDurationMs: 1_000, maxDurationMs: 5_000 },
    });

    expect(await watcher.exited).toBe(1);
    expect(sorted(watcher.byEvent('run.finished').map((l) => l.run_id!))).toEqual(sorted(ids));
    expect(sorted(deliveredRunIds(receiver))).toEqual(sorted(ids));
    expect(receiver.duplicates + receiver.rejected).toBe(0);
    expect(watcher.byEvent('run.added')).toHaveLength(50);
    expect(scenario.runs.filter((r) => r.outcome !== 'SUCCEEDED').length).toBeGreaterThan(0);
    expectNoSecrets(watcher);
  });

  it('faults: 20% 5xx, 5% 429, 2% resets, 2% malformed bodies; every run still finishes and is delivered once per receiver', async () => {
    const {
      ids,
      api,
      receivers: [a, b],
      watcher,
    } = await world.scenario({
      runs: { seed: 9, count: 30, minDurationMs: 1_000, maxDurationMs: 3_000 },
      faults: {
        serverErrorRate: 0.2,
        rateLimitRate: 0.05,
        retryAfterSeconds: 1,
        resetRate: 0.02,
        malformedRate: 0.02,
      },
      receivers: [{}, {}],
    });

    const code = await watcher.exited;
    expect([0, 1]).toContain(code);
    expect(sorted(watcher.byEvent('run.finished').map((l) => l.run_id!))).toEqual(sorted(ids));
    for (const { receiver } of [a, b]) {
      expect(sorted(deliveredRunIds(receiver))).toEqual(sorted(ids));
      expect(receiver.duplicates).toBe(0);
    }
    const faults = new Set(api.simulator.requests.map((r) => r.fault).filter(Boolean));
    expect([...faults].sort()).toEqual(
      expect.arrayContaining(['malformed', 'rate_limit', 'server_error']),
    );
    const failed = watcher.byEvent('poll.failed');
    expect(failed.length).toBeGreaterThan(0);
    for (const line of failed) {
      expect(ids).toContain(line.run_id);
      expect(line['error']).toEqual(
        expect.objectContaining({
          code: expect.any(String),
          message: expect.stringContaining(line.run_id!),
        }),
      );
    }
    expect(watcher.lines().filter((l) => l.level === 'fatal')).toEqual([]);
    expectNoSecrets(watcher);
  });

  it('receivers: one answers 500 at first and gets everything after retries, one answers 410 and is disabled', async () => {
    const {
      ids,
      receivers: [flaky, gone],
      watcher,
    } = await world.scenario({
      runs: { seed: 11, count: 10, minDurationMs: 500, maxDurationMs: 6_000 },
      receivers: [
        { respond: ({ attempt }) => (attempt <= 2 ? 500 : undefined) },
        { respond: () => 410 },
      ],
    });

    expect([0, 1]).toContain(await watcher.exited);
    expect(sorted(deliveredRunIds(flaky.receiver))).toEqual(sorted(ids));
    expect(flaky.receiver.attempts).toBe(ids.length * 3);
    expect(watcher.byEvent('webhook.retrying').length).toBe(ids.length * 2);
    expect(watcher.byEvent('webhook.delivered')).toHaveLength(ids.length);
    expect(watcher.byEvent('webhook.receiver_disabled').length).toBeGreaterThanOrEqual(1);
    expect(gone.receiver.deliveries).toHaveLength(0);
    // Once disabled, the receiver is not tried again: only deliveries already in flight reached it.
    expect(gone.receiver.attempts).toBeLessThan(ids.length);
    expectNoSecrets(watcher);
  });

  it('wrong API key: not ready, one clear log line, no run lost', async () => {
    const { ids, api, watcher } = await world.scenario({
      runs: { seed: 12, count: 4, minDurationMs: 500, maxDurationMs: 1_000 },
      apiKey: 'the-right-key-is-another',
      receivers: [],
      env: { EXIT_WHEN_DONE: 'false' },
    });

    const started = await watcher.waitFor((l) => l.event === 'watcher.started');
    const refused = await watcher.waitFor((l) => l.event === 'watcher.api_key_refused');
    expect(refused).toMatchObject({
      level: 'error',
      msg: expect.stringContaining('refused the API key'),
    });
    // Wait until every run has been refused at least twice, then look at readiness and the logs.
    await watcher.waitFor(
      () =>
        ids.every(
          (id) =>
            api.simulator.requests.filter((r) => r.runId === id && r.status === 401).length >= 2,
        ),
      20_000,
    );
    const ready = await fetch(`http://127.0.0.1:${String(started['http_port'])}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not_ready',
      reasons: ['DataFramer API refuses the API key'],
    });
    expect(watcher.byEvent('watcher.api_key_refused')).toHaveLength(1);
    expect(watcher.byEvent('poll.failed')).toHaveLength(0);

    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
    expect(watcher.byEvent('watcher.stopped')[0]).toMatchObject({ runs_active: ids.length });
    expect(watcher.byEvent('run.finished')).toHaveLength(0);
    expectNoSecrets(watcher);
  });
});
