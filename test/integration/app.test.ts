import { afterEach, describe, expect, it } from '@jest/globals';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { DataFramerApi } from '../../src/dataframer/client.js';
import type { Run } from '../../src/dataframer/schema.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { createLogSink } from '../helpers/log-sink.js';
import { runBody } from '../helpers/run-body.js';
import { deliveredRunIds, useWorld, watchEnv } from '../helpers/world.js';

const [RUN_A, RUN_B, RUN_C] = [
  '0b9c3a52-5f1e-4d6e-9a0b-1c2d3e4f5a6b',
  '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
  '2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a',
];

// The composition root in-process, as probot's run(appFn, {env, log}) is tested: the real parts
// wired by startApp, with the API replaced through its injection point (a DataFramerApi) and the
// store kept in memory, so what the app did can be read back without a child process.

const world = useWorld();
const apps: App[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
});

/** Answers each run's statuses in turn, then the last one for good. */
function scriptedApi(script: Record<string, string[]>) {
  const asked: string[] = [];
  const fetcher: DataFramerApi = {
    readRun(runId) {
      asked.push(runId);
      const statuses = script[runId] ?? ['PENDING'];
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      return Promise.resolve({ run: runBody({ id: runId, status }) as Run, invalidFields: [] });
    },
    listRuns: () => Promise.reject(new Error('the account list is not scripted')),
  };
  return { fetcher, asked };
}

async function start(env: Record<string, string>, fetcher: DataFramerApi) {
  const logs = createLogSink();
  const store = new MemoryStore();
  const fullEnv: Record<string, string> = { HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', ...env };
  const app = await startApp(loadConfig(fullEnv, process.cwd()), {
    env: fullEnv,
    cwd: process.cwd(),
    logDestination: logs.stream,
    store,
    api: fetcher,
  });
  apps.push(app);
  return { app, logs, store, env: fullEnv };
}

describe('startApp, in-process', () => {
  it('wires the parts: runs end, webhooks are verified, done says 1 for a failed run, stop closes the HTTP server', async () => {
    const { url, receiver } = await world.receiver();
    const api = scriptedApi({ [RUN_A]: ['PROCESSING', 'SUCCEEDED'], [RUN_B]: ['FAILED'] });
    const { app, logs, store } = await start(
      watchEnv('http://127.0.0.1:9', [RUN_A, RUN_B], [url]),
      api.fetcher,
    );

    const ready = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
    expect(ready.status).toBe(200);
    expect(await app.done).toBe(1);

    expect(store.getRun(RUN_A)?.outcome).toBe('run.succeeded');
    expect(store.getRun(RUN_B)?.outcome).toBe('run.failed');
    expect(deliveredRunIds(receiver).sort()).toEqual([RUN_A, RUN_B].sort());
    expect(receiver.rejected).toBe(0);
    expect(
      logs
        .byEvent('run.finished')
        .map((l) => l.run_id)
        .sort(),
    ).toEqual([RUN_A, RUN_B].sort());
    expect(logs.byEvent('watcher.started')).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${app.httpPort}/metrics`)).text();
    expect(metrics).toContain('dataframer_watcher_runs_finished_total{outcome="run.failed"} 1');

    await app.stop();
    expect(logs.byEvent('watcher.stopped')[0]).toMatchObject({ drained: true, runs_active: 0 });
    await expect(fetch(`http://127.0.0.1:${app.httpPort}/healthz`)).rejects.toThrow();
  });

  it('reloads the run list from the env it was given, and a bad reload changes nothing', async () => {
    const api = scriptedApi({});
    const { app, logs, env } = await start(watchEnv('http://127.0.0.1:9', [RUN_A]), api.fetcher);
    expect(app.watcher.activeCount).toBe(1);

    env['WATCH_RUN_IDS'] = `${RUN_A},${RUN_C}`;
    app.reloadRunList('test');
    expect(app.watcher.activeCount).toBe(2);
    expect(logs.byEvent('config.reloaded')[0]).toMatchObject({ added: 1, removed: 0, runs: 2 });

    env['WATCH_RUN_IDS'] = 'not a run id!';
    app.reloadRunList('test');
    expect(app.watcher.activeCount).toBe(2);
    expect(logs.byEvent('config.reload_failed')[0]).toMatchObject({
      setting: 'WATCH_RUN_IDS (item 1)',
    });
  });
});
