import { describe, expect, it } from '@jest/globals';
import { generateScenario } from '../../src/demo/scenario.js';
import type { WatcherProcess } from '../helpers/watcher-process.js';
import { deliveredRunIds, tempDir, useWorld } from '../helpers/world.js';

// Runs in without editing a file (docs/api.md), on the built program against the simulator:
// the run API, and account discovery through the list endpoint.

const world = useWorld();
const TOKEN = 't'.repeat(48);
/** A watcher that starts with no runs and takes them while it runs. */
const INTAKE_ENV = {
  EXIT_WHEN_DONE: 'false',
  HTTP_HOST: '127.0.0.1',
  HTTP_PORT: '0',
  ADMIN_TOKEN: TOKEN,
};

/** The run API of a started watcher, as a client would call it. */
async function runApi(watcher: WatcherProcess) {
  const started = await watcher.waitFor((line) => line.event === 'watcher.started');
  const base = `http://127.0.0.1:${String(started['http_port'])}/api`;
  return async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
}

describe('intake on the built program', () => {
  it('delivers 100 runs added through the API while running; a wrong token changes nothing; a removed run is not polled again', async () => {
    const { ids, api, receiver, watcher } = await world.scenario({
      runs: { seed: 12, count: 101, minDurationMs: 2_000, maxDurationMs: 5_000 },
      watchRunIds: false,
      env: { ...INTAKE_ENV, STATE_DIR: tempDir('watcher-intake-') },
    });
    const call = await runApi(watcher);
    const [removed, ...added] = ids;

    const refused = await call('POST', '/runs', { run_ids: added }, 'x'.repeat(48));
    expect(refused.status).toBe(401);
    expect((await call('GET', '/runs')).body['runs']).toEqual([]);

    expect((await call('POST', '/runs', { run_ids: [removed] })).body['added']).toEqual([removed]);
    expect(await call('DELETE', `/runs/${removed}`)).toEqual({
      status: 200,
      body: { run_id: removed, removed: true },
    });
    const removedAt = Date.now();
    const answer = await call('POST', '/runs', { run_ids: added });
    expect(answer.body).toEqual({ added, already_watched: [], already_finished: [] });

    await receiver.received(100);
    expect(deliveredRunIds(receiver).sort()).toEqual([...added].sort());
    expect(receiver.duplicates + receiver.rejected).toBe(0);
    // Every other run was polled again and again meanwhile; the removed one at most once more,
    // by a poll already on its way when it was removed.
    const afterRemoval = api.simulator.requests.filter(
      (r) => r.runId === removed && r.at > removedAt,
    );
    expect(afterRemoval.length).toBeLessThanOrEqual(1);
    expect(watcher.byEvent('run.removed').map((l) => l.run_id)).toEqual([removed]);
    // Finished: the 100 with their outcome, and the removed one, stopped without one.
    const finished = await call('GET', '/runs?state=finished&limit=500');
    const outcomes = (finished.body['runs'] as { run_id: string; outcome: string | null }[]).map(
      (r) => (r.run_id === removed ? r.outcome : 'ended'),
    );
    expect(outcomes.filter((o) => o === 'ended')).toHaveLength(100);
    expect(outcomes).toContain(null);
  });

  it('keeps API-added runs across a restart', async () => {
    const stateDir = tempDir('watcher-intake-restart-');
    const { ids, receiver, env, watcher } = await world.scenario({
      runs: { seed: 13, count: 5, minDurationMs: 8_000, maxDurationMs: 9_000 },
      watchRunIds: false,
      env: { ...INTAKE_ENV, STATE_DIR: stateDir },
    });
    const call = await runApi(watcher);
    expect((await call('POST', '/runs', { run_ids: ids })).body['added']).toEqual(ids);
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);

    const again = world.watcher(env);
    const callAgain = await runApi(again);
    const active = await callAgain('GET', '/runs?state=active');
    const sources = (active.body['runs'] as { run_id: string; source: string }[]).map((r) => [
      r.run_id,
      r.source,
    ]);
    expect(sources.sort()).toEqual(ids.map((id) => [id, 'api']).sort());
    await receiver.received(5);
    expect(deliveredRunIds(receiver).sort()).toEqual([...ids].sort());
    expect(again.byEvent('run.added')).toEqual([]); // resumed, not added again
  });

  it('discovers runs created after it started, not the account’s older ones, and rides out a list outage', async () => {
    const { api, receiver, watcher } = await world.scenario({
      runs: { seed: 14, count: 0 },
      history: 40,
      watchRunIds: false,
      env: {
        ...INTAKE_ENV,
        STATE_DIR: tempDir('watcher-discover-'),
        DISCOVER_RUNS: 'true',
        DISCOVERY_INTERVAL_MS: '300',
      },
    });
    await watcher.waitFor((line) => line.event === 'discovery.started');
    const fresh = generateScenario({
      seed: 15,
      count: 10,
      startSpreadMs: 0,
      minDurationMs: 2_000,
      maxDurationMs: 4_000,
    }).runs;
    api.simulator.addRunsFromNow(fresh.slice(0, 5));
    await receiver.received(5);

    // The list goes down: the runs already watched are still polled and delivered, and the
    // outage is one log line, with one more when the list answers again.
    api.simulator.setFaults({ listUnavailable: true });
    await watcher.waitFor((line) => line.event === 'discovery.failed');
    api.simulator.addRunsFromNow(fresh.slice(5));
    api.simulator.setFaults({});
    await watcher.waitFor((line) => line.event === 'discovery.recovered');
    await receiver.received(10);

    const freshIds = fresh.map((run) => run.runId);
    expect(deliveredRunIds(receiver).sort()).toEqual([...freshIds].sort());
    expect(
      watcher
        .byEvent('run.added')
        .map((l) => [l.run_id, l['source']])
        .sort(),
    ).toEqual(freshIds.map((id) => [id, 'discovery']).sort());
    expect(watcher.byEvent('discovery.failed')).toHaveLength(1);
    expect(watcher.byEvent('discovery.recovered')).toHaveLength(1);
    const lists = api.simulator.requests.filter((r) => r.runId === null);
    expect(lists.some((r) => r.status === 503)).toBe(true);
  });
});
