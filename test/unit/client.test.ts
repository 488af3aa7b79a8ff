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

function makeClient() {
  let clock = 1_700_000_000_000;
  const sleeps: number[] = [];
  const client = new DataFramerClient({
    baseUrl: BASE,
    apiKey: KEY,
    timeoutMs: 2_000,
    retries: 3,
    minRetryDelayMs: 1,
    maxRetryDelayMs: 2,
    now: () => clock,
    // The injected sleep moves the clock instead of waiting.
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms;
      return Promise.resolve();
    },
  });
  return { client, sleeps, advance: (ms: number) => (clock += ms) };
}

function api() {
  return nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}` } });
}

describe('DataFramerClient.getRun', () => {
  it('parses the spec example body', async () => {
    api().get(PATH).reply(200, exampleRun);
    const run = await makeClient().client.getRun(RUN_ID);
    expect(run).toEqual(exampleRun);
  });

  it.each(RUN_STATUSES)('accepts status %s', async (status) => {
    api().get(PATH).reply(200, runBody({ status }));
    await expect(makeClient().client.getRun(RUN_ID)).resolves.toMatchObject({ status });
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
    await expect(makeClient().client.getRun(RUN_ID)).resolves.toEqual(body);
  });

  it('keeps fields the spec does not list', async () => {
    api()
      .get(PATH)
      .reply(
        200,
        runBody({
          priority: 'high',
          generated_files: [{ id: 'f', path: 'a.csv', checksum: 'abc' }],
        }),
      );
    const run = await makeClient().client.getRun(RUN_ID);
    expect(run).toMatchObject({ priority: 'high', generated_files: [{ checksum: 'abc' }] });
  });

  it('keeps a status outside the spec enum instead of failing', async () => {
    api()
      .get(PATH)
      .reply(200, runBody({ status: 'IN_PROGRESS', dataset_type: 'SOMETHING_NEW' }));
    await expect(makeClient().client.getRun(RUN_ID)).resolves.toMatchObject({
      status: 'IN_PROGRESS',
    });
  });

  it('maps 401 to UnauthorizedError without retrying', async () => {
    api().get(PATH).once().reply(401, { detail: 'Invalid token.' });
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401, runId: RUN_ID });
  });

  it('maps 404 to RunNotFoundError without retrying', async () => {
    api().get(PATH).once().reply(404, { detail: 'Not found.' });
    await expect(makeClient().client.getRun(RUN_ID)).rejects.toBeInstanceOf(RunNotFoundError);
  });

  it('honours Retry-After on 429 and pauses the whole client', async () => {
    const { client, sleeps } = makeClient();
    api().get(PATH).reply(429, {}, { 'retry-after': '7' }).get(PATH).reply(200, exampleRun);
    await expect(client.getRun(RUN_ID)).resolves.toMatchObject({ id: RUN_ID });
    expect(sleeps).toEqual([7_000]);
  });

  it('makes other requests wait out a Retry-After too', async () => {
    const { client, sleeps, advance } = makeClient();
    api().get(PATH).reply(503, 'busy', { 'retry-after': '30' }).get(PATH).reply(200, exampleRun);
    await client.getRun(RUN_ID);
    expect(sleeps).toEqual([30_000]);
    // 10 s later the pause is over: no further wait.
    advance(10_000);
    api().get(PATH).reply(200, exampleRun);
    await client.getRun(RUN_ID);
    expect(sleeps).toEqual([30_000]);
  });

  it('gives up after the retries with a RateLimitedError carrying the delay', async () => {
    api().get(PATH).times(4).reply(429, {}, { 'retry-after': '1' });
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ retryAfterMs: 1_000 });
  });

  it('retries a 500 and then succeeds', async () => {
    api().get(PATH).reply(500, 'oops').get(PATH).reply(200, exampleRun);
    await expect(makeClient().client.getRun(RUN_ID)).resolves.toMatchObject({ id: RUN_ID });
  });

  it('retries a connection reset', async () => {
    api()
      .get(PATH)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .get(PATH)
      .reply(200, exampleRun);
    await expect(makeClient().client.getRun(RUN_ID)).resolves.toMatchObject({ id: RUN_ID });
  });

  it('reports the network code when resets persist', async () => {
    api()
      .get(PATH)
      .times(4)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ networkCode: 'ECONNRESET', status: null });
  });

  it('fails a malformed JSON body as an invalid response, not a crash', async () => {
    api().get(PATH).reply(200, '{"id": "3c90c3cc', { 'content-type': 'application/json' });
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({ path: '(body)' });
  });

  it('names the offending path of a body that breaks the schema', async () => {
    api()
      .get(PATH)
      .reply(
        200,
        runBody({ runtime_params: { ...exampleRun.runtime_params, number_of_samples: 'many' } }),
      );
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({ path: 'runtime_params.number_of_samples' });
    expect((error as Error).message).toContain(RUN_ID);
  });

  it('rejects a body that is about another run', async () => {
    api()
      .get(PATH)
      .reply(200, runBody({ id: '11111111-2222-4333-8444-555555555555' }));
    await expect(makeClient().client.getRun(RUN_ID)).rejects.toMatchObject({ path: 'id' });
  });

  it('never puts the API key in an error', async () => {
    api()
      .get(PATH)
      .times(4)
      .replyWithError(Object.assign(new Error('boom'), { code: 'ECONNREFUSED' }));
    const error = await makeClient()
      .client.getRun(RUN_ID)
      .catch((e: unknown) => e);
    const serialized = JSON.stringify(error, Object.getOwnPropertyNames(error)) + String(error);
    expect(serialized).not.toContain(KEY);
  });
});
