import { afterEach, describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { OPENAPI } from '../../src/api/openapi.js';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { DataFramerApi } from '../../src/dataframer/client.js';
import type { Run } from '../../src/dataframer/schema.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { newDelivery } from '../helpers/delivery.js';
import { createLogSink } from '../helpers/log-sink.js';
import { runBody } from '../helpers/run-body.js';
import { useWorld, watchEnv } from '../helpers/world.js';

// The run API on a real listening watcher (in-process, the API read through a DataFramerApi that
// keeps every run PROCESSING), every answer checked against the OpenAPI document it serves.

const TOKEN = 'a'.repeat(40);
const world = useWorld();
const apps: App[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
});

const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);
ajv.addSchema(OPENAPI, 'openapi');
function expectSchema(name: string, body: unknown): void {
  const validate = ajv.getSchema(`openapi#/components/schemas/${name}`)!;
  expect(validate(body) ? [] : validate.errors).toEqual([]);
}

const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const processing: DataFramerApi = {
  readRun: (runId) =>
    Promise.resolve({
      run: runBody({ id: runId, status: 'PROCESSING', completed_at: null }) as Run,
      invalidFields: [],
    }),
  listRuns: () => Promise.reject(new Error('the account list is not used here')),
};

async function start(store = new MemoryStore(), receivers: string[] = []) {
  const env = {
    ...watchEnv('http://127.0.0.1:9', [], receivers, { EXIT_WHEN_DONE: 'false' }),
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    ADMIN_TOKEN: TOKEN,
  };
  const logs = createLogSink();
  const app = await startApp(loadConfig(env, process.cwd()), {
    env,
    logDestination: logs.stream,
    store,
    api: processing,
  });
  apps.push(app);
  const base = `http://127.0.0.1:${app.httpPort}`;
  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { app, call, logs };
}

describe('the run API', () => {
  it('refuses a missing or wrong token with 401, and changes nothing', async () => {
    const { app, call } = await start();
    for (const token of ['', 'b'.repeat(40), TOKEN.slice(1)]) {
      const answer = await call('POST', '/api/runs', { run_ids: [uuid(1)] }, token);
      expect(answer.status).toBe(401);
      expectSchema('Error', answer.body);
    }
    expect(app.watcher.activeCount).toBe(0);
  });

  it('adds runs idempotently, lists and shows them as the document says, and removes one', async () => {
    const { app, call } = await start();
    const added = await call('POST', '/api/runs', { run_ids: [uuid(1), uuid(2)] });
    expect(added).toEqual({
      status: 200,
      body: { added: [uuid(1), uuid(2)], already_watched: [], already_finished: [] },
    });
    const again = await call('POST', '/api/runs', { run_ids: [uuid(2), uuid(3)] });
    expect(again.body).toEqual({
      added: [uuid(3)],
      already_watched: [uuid(2)],
      already_finished: [],
    });
    expectSchema('AddRunsResult', again.body);
    expect(app.watcher.activeCount).toBe(3);

    const list = await call('GET', '/api/runs?state=active');
    expectSchema('RunPage', list.body);
    expect((list.body['runs'] as { source: string }[]).map((r) => r.source)).toEqual([
      'api',
      'api',
      'api',
    ]);
    const one = await call('GET', `/api/runs/${uuid(1)}`);
    expect(one.status).toBe(200);
    expectSchema('RunDetail', one.body);

    expect(await call('DELETE', `/api/runs/${uuid(1)}`)).toEqual({
      status: 200,
      body: { run_id: uuid(1), removed: true },
    });
    expect(app.watcher.activeCount).toBe(2);
    expect((await call('DELETE', `/api/runs/${uuid(1)}`)).status).toBe(404);
  });

  it('pages through the runs newest first, each once', async () => {
    const { call } = await start();
    const ids = [1, 2, 3, 4, 5].map(uuid);
    await call('POST', '/api/runs', { run_ids: ids });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call('GET', `/api/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expectSchema('RunPage', page.body);
      seen.push(...(page.body['runs'] as { run_id: string }[]).map((r) => r.run_id));
      cursor = page.body['next_cursor'] as string | null;
    } while (cursor);
    expect(seen.sort()).toEqual(ids);
  });

  it.each<[string, string, string, unknown, number, string | undefined]>([
    [
      'a run ID that is not a UUID',
      'POST',
      '/api/runs',
      { run_ids: [uuid(1), 'nope'] },
      400,
      'run_ids[1]',
    ],
    ['an unknown field', 'POST', '/api/runs', { run_ids: [uuid(1)], x: 1 }, 400, 'body'],
    ['no run IDs', 'POST', '/api/runs', { run_ids: [] }, 400, 'run_ids'],
    ['a body that is not JSON', 'POST', '/api/runs', '{"run_ids": [', 400, 'body'],
    ['a body over 1 MB', 'POST', '/api/runs', 'x'.repeat(1024 * 1024 + 1), 413, undefined],
    ['a limit out of range', 'GET', '/api/runs?limit=0', undefined, 400, 'limit'],
    ['a forged cursor', 'GET', '/api/runs?cursor=abc', undefined, 400, 'cursor'],
    ['a bad run ID in the path', 'GET', '/api/runs/nope', undefined, 400, 'run_id'],
    ['an unknown run', 'GET', `/api/runs/${uuid(9)}`, undefined, 404, undefined],
    ['an unknown path', 'GET', '/api/nothing', undefined, 404, undefined],
    ['a wrong method', 'PUT', '/api/runs', undefined, 405, undefined],
  ])(
    'answers %s with its status and the error shape',
    async (_name, method, path, body, status, field) => {
      const { app, call } = await start();
      const answer = await call(method, path, body);
      expect(answer.status).toBe(status);
      expectSchema('Error', answer.body);
      expect((answer.body['error'] as { field?: string }).field).toBe(field);
      expect(app.watcher.activeCount).toBe(0);
    },
  );

  it('replays a dead-lettered delivery while running, and the receiver gets it', async () => {
    const { receiver, url } = await world.receiver();
    const store = new MemoryStore();
    const body = JSON.stringify(buildWebhookBody('run.failed', uuid(7), null, new Date(0)));
    const dead = newDelivery('d1', url, { state: 'dead_lettered', attempts: 5, body });
    store.saveDelivery(dead);
    const { call } = await start(store, [url]);

    const answer = await call('POST', `/api/deliveries/${dead.id}/replay`);
    expect(answer.status).toBe(200);
    expectSchema('Delivery', answer.body);
    await receiver.received(1);
    expect(receiver.deliveries.map((d) => d.webhookId)).toEqual([dead.messageId]);
    expect((await call('POST', `/api/deliveries/${dead.id}/replay`)).status).toBe(409);
    expect((await call('POST', '/api/deliveries/dlv_none/replay')).status).toBe(404);
  });
});
