import { describe, expect, it } from '@jest/globals';
import { DataFramerClient } from '../../src/dataframer/client.js';
import {
  InvalidResponseError,
  RateLimitedError,
  RunNotFoundError,
  TransientError,
  UnauthorizedError,
} from '../../src/dataframer/errors.js';
import { RUN_STATUSES } from '../../src/dataframer/schema.js';
import { nock, useStrictHttpMock } from '../helpers/http-mock.js';
import { exampleRun, runBody } from '../helpers/run-body.js';

const BASE = 'https://api.test';
const KEY = 'df_test_key_0123456789';
const RUN_ID = exampleRun.id;
const PATH = `/api/dataframer/runs/${RUN_ID}/`;

useStrictHttpMock();

/** The run a fresh client reads (the common case of these tests). */
const readRun = () =>
  makeClient()
    .client.readRun(RUN_ID)
    .then((r) => r.run);
/** What a promise rejected with, or what it resolved to. */
const failureOf = (promise: Promise<unknown>) => promise.catch((e: unknown) => e);

function makeClient() {
  let wall = 1_700_000_000_000;
  let monotonic = 5_000;
  const sleeps: number[] = [];
  const client = new DataFramerClient({
    baseUrl: BASE,
    apiKey: KEY,
    timeoutMs: 2_000,
    retries: 3,
    minRetryDelayMs: 1,
    maxRetryDelayMs: 2,
    now: () => wall,
    monotonicNow: () => monotonic,
    // The injected sleep moves both clocks instead of waiting.
    sleep: (ms) => {
      sleeps.push(ms);
      wall += ms;
      monotonic += ms;
      return Promise.resolve();
    },
  });
  return {
    client,
    sleeps,
    advance: (ms: number) => {
      wall += ms;
      monotonic += ms;
    },
    /** The wall clock alone is set, as NTP or an operator may do. */
    stepWallClock: (ms: number) => (wall += ms),
  };
}

function api() {
  return nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}` } });
}

describe('DataFramerClient.readRun', () => {
  it('parses the spec example body', async () => {
    api().get(PATH).reply(200, exampleRun);
    const run = await readRun();
    expect(run).toEqual(exampleRun);
  });

  it.each(RUN_STATUSES)('accepts status %s', async (status) => {
    api().get(PATH).reply(200, runBody({ status }));
    await expect(readRun()).resolves.toMatchObject({ status });
  });

  it('accepts every nullable field as null', async () => {
    const body = runBody({
      dataset_id: null,
      dataset_name: null,
      total_cost: null,
      completed_at: null,
      runtime_params: {
        ...exampleRun.runtime_params,
        revision_model: null,
        max_revision_cycles: null,
        max_examples_in_prompt: null,
        generation_thinking_budget: null,
        outline_thinking_budget: null,
        revision_thinking_budget: null,
        skip_outline: null,
        tools: null,
      },
    });
    api().get(PATH).reply(200, body);
    await expect(readRun()).resolves.toEqual(body);
  });

  it('drops fields the spec does not list, without failing', async () => {
    api()
      .get(PATH)
      .reply(
        200,
        runBody({
          priority: 'high',
          generated_files: [{ id: 'f', path: 'a.csv', checksum: 'abc' }],
        }),
      );
    const reading = await makeClient().client.readRun(RUN_ID);
    expect(reading.run).not.toHaveProperty('priority');
    expect(reading.run.generated_files).toEqual([{ id: 'f', path: 'a.csv' }]);
    expect(reading.invalidFields).toEqual([]);
  });

  it('passes off-spec optional fields on as missing and names each once', async () => {
    api()
      .get(PATH)
      .reply(
        200,
        runBody({
          status: 'SUCCEEDED',
          total_cost: '1.37',
          spec_version: null,
          samples_failed: -2,
          runtime_params: { ...exampleRun.runtime_params, number_of_samples: 'many' },
          generated_files: [
            { id: 'a', path: 'a.csv', size_bytes: '12' },
            { id: 'b', path: 'b.csv', size_bytes: -1 },
            'not a file',
            { id: 'c', path: 'c.csv', size_bytes: 3 },
          ],
        }),
      );
    const { run, invalidFields } = await makeClient().client.readRun(RUN_ID);
    expect(run).toMatchObject({ id: RUN_ID, status: 'SUCCEEDED', samples_completed: 123 });
    for (const field of ['total_cost', 'spec_version', 'samples_failed'])
      expect(run).not.toHaveProperty(field);
    expect(run.runtime_params).not.toHaveProperty('number_of_samples');
    expect(run.generated_files).toEqual([
      { id: 'a', path: 'a.csv' },
      { id: 'b', path: 'b.csv' },
      { id: 'c', path: 'c.csv', size_bytes: 3 },
    ]);
    expect(invalidFields.map((f) => f.field).sort()).toEqual([
      'generated_files.*',
      'generated_files.*.size_bytes',
      'runtime_params.number_of_samples',
      'samples_failed',
      'spec_version',
      'total_cost',
    ]);
    // The problem says what was expected, never the value.
    expect(invalidFields.find((f) => f.field === 'total_cost')?.problem).toMatch(/expected number/);
  });

  it.each([
    ['id', { id: undefined }],
    ['id', { id: 42 }],
    ['status', { status: 2 }],
    ['status', { status: '' }],
  ])('fails a body whose %s is unusable (%j), naming it', async (path, overrides) => {
    api().get(PATH).reply(200, runBody(overrides));
    const error = await makeClient()
      .client.readRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', path });
    expect((error as Error).message).toContain(RUN_ID);
  });

  it.each([['[]'], ['null'], ['"run"'], ['42']])(
    'fails a JSON body that is not an object (%s) at the root',
    async (body) => {
      api().get(PATH).reply(200, body, { 'content-type': 'application/json' });
      await expect(makeClient().client.readRun(RUN_ID)).rejects.toMatchObject({
        code: 'INVALID_RESPONSE',
        path: '(root)',
      });
    },
  );

  it('keeps a status outside the spec enum instead of failing', async () => {
    api()
      .get(PATH)
      .reply(200, runBody({ status: 'IN_PROGRESS', dataset_type: 'SOMETHING_NEW' }));
    await expect(readRun()).resolves.toMatchObject({
      status: 'IN_PROGRESS',
    });
  });

  it('maps 401 to UnauthorizedError without retrying', async () => {
    api().get(PATH).once().reply(401, { detail: 'Invalid token.' });
    const error = await failureOf(readRun());
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401, runId: RUN_ID });
  });

  it('maps 404 to RunNotFoundError without retrying', async () => {
    api().get(PATH).once().reply(404, { detail: 'Not found.' });
    await expect(readRun()).rejects.toBeInstanceOf(RunNotFoundError);
  });

  it('honours Retry-After on 429 and pauses the whole client', async () => {
    const { client, sleeps } = makeClient();
    api().get(PATH).reply(429, {}, { 'retry-after': '7' }).get(PATH).reply(200, exampleRun);
    await expect(client.readRun(RUN_ID).then((r) => r.run)).resolves.toMatchObject({ id: RUN_ID });
    expect(sleeps).toEqual([7_000]);
  });

  it('makes other requests wait out a Retry-After too', async () => {
    const { client, sleeps, advance } = makeClient();
    api().get(PATH).reply(503, 'busy', { 'retry-after': '30' }).get(PATH).reply(200, exampleRun);
    await client.readRun(RUN_ID).then((r) => r.run);
    expect(sleeps).toEqual([30_000]);
    // 10 s later the pause is over: no further wait.
    advance(10_000);
    api().get(PATH).reply(200, exampleRun);
    await client.readRun(RUN_ID).then((r) => r.run);
    expect(sleeps).toEqual([30_000]);
  });

  it('keeps the pause on a monotonic clock: a wall clock stepped back does not stretch it', async () => {
    const { client, sleeps, stepWallClock } = makeClient();
    api().get(PATH).reply(429, {}, { 'retry-after': '7' }).get(PATH).reply(200, exampleRun);
    await client.readRun(RUN_ID).then((r) => r.run);
    expect(sleeps).toEqual([7_000]);
    stepWallClock(-60 * 60 * 1000);
    api().get(PATH).reply(200, exampleRun);
    await client.readRun(RUN_ID).then((r) => r.run);
    expect(sleeps).toEqual([7_000]);
  });

  it('gives up after the retries with a RateLimitedError carrying the delay', async () => {
    api().get(PATH).times(4).reply(429, {}, { 'retry-after': '1' });
    const error = await failureOf(readRun());
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ retryAfterMs: 1_000 });
  });

  it('retries a 500 and then succeeds', async () => {
    api().get(PATH).reply(500, 'oops').get(PATH).reply(200, exampleRun);
    await expect(readRun()).resolves.toMatchObject({ id: RUN_ID });
  });

  it('retries a connection reset', async () => {
    api()
      .get(PATH)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .get(PATH)
      .reply(200, exampleRun);
    await expect(readRun()).resolves.toMatchObject({ id: RUN_ID });
  });

  it('reports the network code when resets persist', async () => {
    api()
      .get(PATH)
      .times(4)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const error = await failureOf(readRun());
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ networkCode: 'ECONNRESET', status: null });
  });

  it('fails a malformed JSON body as an invalid response, not a crash', async () => {
    api().get(PATH).reply(200, '{"id": "3c90c3cc', { 'content-type': 'application/json' });
    const error = await failureOf(readRun());
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({ path: '(body)' });
  });

  it('rejects a body that is about another run', async () => {
    api()
      .get(PATH)
      .reply(200, runBody({ id: '11111111-2222-4333-8444-555555555555' }));
    await expect(readRun()).rejects.toMatchObject({ path: 'id' });
  });

  it('never puts the API key in an error', async () => {
    api()
      .get(PATH)
      .times(4)
      .replyWithError(Object.assign(new Error('boom'), { code: 'ECONNREFUSED' }));
    const error = await failureOf(readRun());
    const serialized = JSON.stringify(error, Object.getOwnPropertyNames(error)) + String(error);
    expect(serialized).not.toContain(KEY);
  });
});

describe('DataFramerClient.listRuns', () => {
  const LIST = '/api/dataframer/runs/';
  const listed = (id: string, status = 'PROCESSING') => {
    const { runtime_params: _params, generated_files: _files, ...item } = runBody({ id, status });
    return item;
  };
  const A = '11111111-1111-4111-8111-111111111111';
  const B = '22222222-2222-4222-8222-222222222222';

  it('reads the list with the key, and reports its size', async () => {
    const body = [listed(A), listed(B, 'SUCCEEDED')];
    api().get(LIST).matchHeader('authorization', `Bearer ${KEY}`).reply(200, body);
    const list = await makeClient().client.listRuns();
    expect(list.runs.map((r) => [r.id, r.status])).toEqual([
      [A, 'PROCESSING'],
      [B, 'SUCCEEDED'],
    ]);
    expect(list).toMatchObject({ invalidItems: 0, bytes: JSON.stringify(body).length });
  });

  it('skips an item that breaks the spec, and counts it, instead of failing the list', async () => {
    api()
      .get(LIST)
      .reply(200, [listed(A), { id: 'not-a-uuid', status: 'PENDING' }, { status: 7 }, listed(B)]);
    const list = await makeClient().client.listRuns();
    expect(list.runs.map((r) => r.id)).toEqual([A, B]);
    expect(list.invalidItems).toBe(2);
  });

  it('fails a body that is not a JSON array as an invalid response', async () => {
    api().get(LIST).reply(200, { results: [] });
    const error = await failureOf(makeClient().client.listRuns());
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect((error as Error).message).toBe('the run list: body is not a JSON array');
  });

  it('retries a 503 and names the list in a lasting failure', async () => {
    api()
      .get(LIST)
      .reply(503, 'busy')
      .get(LIST)
      .reply(200, [listed(A)]);
    expect((await makeClient().client.listRuns()).runs).toHaveLength(1);
    api().get(LIST).times(4).reply(502, 'bad gateway');
    const error = await failureOf(makeClient().client.listRuns());
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toBe('GET the run list answered 502');
  });
});
