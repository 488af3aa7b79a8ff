import { describe, expect, it } from '@jest/globals';
import { deliveredRunIds, useWorld } from '../helpers/world.js';

const world = useWorld();

describe('the watcher process against a local API and receiver', () => {
  it('reports each of 20 runs once, delivers one verified webhook each, and exits 1 when some failed', async () => {
    const { scenario, api, receiver, watcher } = await world.scenario({
      runs: { seed: 20, count: 20, minDurationMs: 1_000, maxDurationMs: 4_000 },
      faults: { serverErrorRate: 0.1, resetRate: 0.05 },
    });

    expect(await watcher.exited).toBe(1);
    const finished = watcher.byEvent('run.finished');
    expect(finished.map((l) => l.run_id).sort()).toEqual(scenario.runs.map((r) => r.runId).sort());
    for (const run of scenario.runs) {
      const line = finished.find((l) => l.run_id === run.runId)!;
      expect(line).toMatchObject({ level: 'info', status: run.outcome, msg: 'run finished' });
      expect(typeof line['samples_completed']).toBe('number');
      expect(line).toHaveProperty('total_cost');
      expect(line).toHaveProperty('generated_files');
    }
    expect(scenario.runs.some((r) => r.outcome !== 'SUCCEEDED')).toBe(true);

    expect(deliveredRunIds(receiver).sort()).toEqual(scenario.runs.map((r) => r.runId).sort());
    expect(receiver.rejected).toBe(0);
    for (const { body } of receiver.deliveries) {
      const { data, type } = body as { type: string; data: { run_id: string; status: string } };
      const run = scenario.runs.find((r) => r.runId === data.run_id)!;
      expect({ type, status: data.status }).toEqual({
        type: `run.${run.outcome.toLowerCase()}`,
        status: run.outcome,
      });
    }
    // Transient faults were met and survived.
    expect(api.simulator.requests.some((r) => r.fault !== null)).toBe(true);
    // No request at all (answered, failed or reset) for a run after it was seen finished.
    for (const run of scenario.runs) {
      const requests = api.simulator.requests.filter((r) => r.runId === run.runId);
      const seenEnd = requests.findIndex((r) => r.status === 200 && r.runStatus === run.outcome);
      expect(seenEnd).toBe(requests.length - 1);
    }
  });

  it('exits 0 when every run succeeded', async () => {
    const { receiver, watcher } = await world.scenario({
      runs: {
        seed: 3,
        count: 5,
        minDurationMs: 500,
        maxDurationMs: 1_500,
        outcomes: { SUCCEEDED: 1 },
      },
    });
    expect(await watcher.exited).toBe(0);
    expect(receiver.deliveries).toHaveLength(5);
    expect(watcher.byEvent('watcher.stopped')).toHaveLength(1);
  });

  it('stops gracefully on SIGTERM with exit code 0', async () => {
    const { watcher } = await world.scenario({
      runs: { seed: 4, count: 3, minDurationMs: 60_000, maxDurationMs: 90_000 },
      receivers: [],
      env: { EXIT_WHEN_DONE: 'false' },
    });
    await watcher.waitFor((l) => l.event === 'run.status_changed');
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
    expect(watcher.byEvent('watcher.stopped')[0]).toMatchObject({ drained: true, runs_active: 3 });
  });
});
