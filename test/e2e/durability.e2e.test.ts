import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { intBetween, mulberry32 } from '../../src/demo/random.js';
import type { LogLine } from '../helpers/log-sink.js';
import { API_KEY, deliveredRunIds, tempDir, useWorld } from '../helpers/world.js';

const world = useWorld();

function expectedWebhookId(runId: string, outcome: string): string {
  return `msg_${runId.replaceAll('-', '')}_${outcome.toLowerCase()}`;
}

describe('durability: restarts, crashes and the live run list', () => {
  it('SIGKILL at random moments loses nothing: 300 runs, every finish delivered, no poll after a recorded finish', async () => {
    const { scenario, ids, api, receiver, env } = await world.scenario({
      runs: {
        seed: 300,
        count: 300,
        minDurationMs: 2_000,
        // Longer than five starts and kills can take, so no start finds every run ended.
        maxDurationMs: 15_000,
      },
      env: {
        POLL_RATE_PER_SECOND: '500',
        POLL_CONCURRENCY: '32',
        STATE_DIR: tempDir('watcher-crash-'),
      },
      watcher: false,
    });
    const random = mulberry32(42);
    const logs: LogLine[] = [];
    for (let kill = 0; kill < 5; kill++) {
      const watcher = world.watcher(env);
      await watcher.waitFor((l) => l.event === 'watcher.started');
      await new Promise((resolve) => setTimeout(resolve, intBetween(random, 300, 1_800)));
      watcher.kill('SIGKILL');
      expect(await watcher.exited).toBe('SIGKILL');
      logs.push(...watcher.lines());
    }
    const last = world.watcher(env);
    expect(await last.exited).toBe(1);
    logs.push(...last.lines());

    // Every run was delivered, under the one webhook-id of its terminal event.
    expect(new Set(deliveredRunIds(receiver))).toEqual(new Set(ids));
    for (const { webhookId, body } of receiver.deliveries) {
      const { data } = body as { data: { run_id: string; status: string } };
      const run = scenario.runs.find((r) => r.runId === data.run_id)!;
      expect(data.status).toBe(run.outcome);
      expect(webhookId).toBe(expectedWebhookId(run.runId, run.outcome));
    }
    expect(receiver.deliveries).toHaveLength(ids.length);

    // A run.finished line is written only after the finish is durable: at most one per run, and
    // no poll of that run reached the API afterwards, in this process or any later one.
    const finished = logs.filter((l) => l.event === 'run.finished');
    const finishedAt = new Map<string, number>();
    for (const line of finished) {
      expect(finishedAt.has(line.run_id!)).toBe(false);
      finishedAt.set(line.run_id!, Date.parse(line.time));
    }
    expect(finishedAt.size).toBeGreaterThan(ids.length * 0.9);
    for (const request of api.simulator.requests) {
      const at = request.runId ? finishedAt.get(request.runId) : undefined;
      if (at !== undefined) expect(request.at).toBeLessThanOrEqual(at);
    }
  }, 120_000);

  it('SIGTERM during deliveries: in-flight ones finish, the rest are sent after restart, none twice', async () => {
    const { ids, receiver, env } = await world.scenario({
      runs: { seed: 21, count: 20, minDurationMs: 1_000, maxDurationMs: 6_000 },
      receivers: [{ delayMs: 400 }],
      env: { STATE_DIR: tempDir('watcher-term-') },
      watcher: false,
    });

    const first = world.watcher({ ...env, EXIT_WHEN_DONE: 'false' });
    await first.waitFor((l) => l.event === 'webhook.delivered');
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const stopped = first.byEvent('watcher.stopped')[0]!;
    expect(stopped['drained']).toBe(true);
    const deliveredBefore = receiver.deliveries.length;
    expect(deliveredBefore).toBeLessThan(ids.length);

    const second = world.watcher(env);
    expect([0, 1]).toContain(await second.exited);
    expect(new Set(deliveredRunIds(receiver))).toEqual(new Set(ids));
    expect(receiver.duplicates).toBe(0);
    // The second process did not poll runs the first had already seen finish.
    const finishedFirst = new Set(first.byEvent('run.finished').map((l) => l.run_id));
    expect(second.byEvent('run.finished').filter((l) => finishedFirst.has(l.run_id))).toEqual([]);
  });

  it('lists and replays dead-lettered deliveries from the command line, with the same webhook-id', async () => {
    let accepting = false;
    const stateDir = tempDir('watcher-replay-');
    const { ids, receiver, env, watcher } = await world.scenario({
      runs: {
        seed: 8,
        count: 2,
        minDurationMs: 300,
        maxDurationMs: 600,
        outcomes: { SUCCEEDED: 1 },
      },
      receivers: [{ respond: () => (accepting ? undefined : 400) }],
      env: { STATE_DIR: stateDir },
    });
    expect(await watcher.exited).toBe(0);
    expect(watcher.byEvent('webhook.dead_lettered')).toHaveLength(2);

    const list = world.deliveries(stateDir, 'list');
    expect(await list.exited).toBe(0);
    const listed = list.lines();
    expect(listed.map((l) => l['run_id']).sort()).toEqual([...ids].sort());
    expect(listed[0]).toMatchObject({
      state: 'dead_lettered',
      last_error: 'HTTP 400',
      attempts: 1,
    });
    expect(list.stdout()).not.toContain(API_KEY);

    const replay = world.deliveries(stateDir, 'replay', '--all-dead');
    expect(await replay.exited).toBe(0);
    expect(replay.lines()).toHaveLength(2);

    accepting = true;
    const again = world.watcher(env);
    expect(await again.exited).toBe(0);
    expect(receiver.deliveries.map((d) => d.webhookId).sort()).toEqual(
      ids.map((id) => expectedWebhookId(id, 'SUCCEEDED')).sort(),
    );
    // Nothing was polled again: the runs were already finished in the store.
    expect(again.byEvent('run.added')).toHaveLength(0);

    const bad = world.deliveries(stateDir, 'replay', 'dlv_nope');
    expect(await bad.exited).toBe(64);
    expect(bad.stderr()).toContain('no delivery with id dlv_nope');
  });

  it('reloads the run list from the file and on SIGHUP; a bad file is rejected and the watcher goes on', async () => {
    const dir = tempDir('watcher-reload-');
    const file = path.join(dir, 'watcher.json');
    const { ids, api, env } = await world.scenario({
      runs: { seed: 33, count: 3, minDurationMs: 120_000, maxDurationMs: 120_000 },
      receivers: [],
      watchRunIds: false,
      env: { EXIT_WHEN_DONE: 'false', CONFIG_FILE: file },
      watcher: false,
    });
    const [a, b, c] = ids as [string, string, string];
    writeFileSync(file, JSON.stringify({ watchRunIds: [a] }));
    const watcher = world.watcher(env, { cwd: dir });
    await watcher.waitFor((l) => l.event === 'run.added' && l.run_id === a);

    writeFileSync(file, JSON.stringify({ watchRunIds: [a, b] }));
    await watcher.waitFor((l) => l.event === 'run.added' && l.run_id === b);

    watcher.kill('SIGHUP');
    await watcher.waitFor((l) => l.event === 'config.reloaded' && l['reason'] === 'SIGHUP');

    writeFileSync(file, JSON.stringify({ watchRunIds: [b, 'not-a-run'] }));
    const rejected = await watcher.waitFor((l) => l.event === 'config.reload_failed');
    expect(rejected).toMatchObject({
      level: 'error',
      setting: 'watcher.json: watchRunIds (item 2)',
    });
    writeFileSync(file, '{ "watchRunIds": [');
    await watcher.waitFor(
      (l) => l.event === 'config.reload_failed' && l['setting'] === 'CONFIG_FILE',
    );
    expect(watcher.byEvent('run.removed')).toHaveLength(0);

    writeFileSync(file, JSON.stringify({ watchRunIds: [b, c] }));
    const removed = await watcher.waitFor((l) => l.event === 'run.removed' && l.run_id === a);
    await watcher.waitFor((l) => l.event === 'run.added' && l.run_id === c);
    // Polling goes on for the others, and stops for the removed run (one in flight may land).
    const removedAt = Date.parse(removed.time);
    await watcher.waitFor(
      () => api.simulator.requests.some((r) => r.runId === c && r.at > removedAt + 1_500),
      10_000,
    );
    expect(api.simulator.requests.filter((r) => r.runId === a && r.at > removedAt + 500)).toEqual(
      [],
    );

    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  });
});
