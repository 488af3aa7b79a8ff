import { afterEach, describe, expect, it } from '@jest/globals';
import { DataFramerClient, type DataFramerClientOptions } from '../../src/dataframer/client.js';
import { ResponseTooLargeError } from '../../src/dataframer/errors.js';
import { exampleRun, runBody } from '../helpers/run-body.js';
import { MB, startBodyServer, type BodyPlan } from './body-server.js';

const RUN_ID = exampleRun.id;

let close: (() => Promise<void>) | null = null;
afterEach(async () => {
  await close?.();
  close = null;
});

async function api(plan: BodyPlan) {
  const server = await startBodyServer(() => plan);
  close = server.close;
  return server;
}

function client(baseUrl: string, options: Partial<DataFramerClientOptions> = {}) {
  return new DataFramerClient({
    baseUrl,
    apiKey: 'df_test_key_0123456789',
    // Long enough never to be what ends a passing test: each ends on bytes, not on a clock.
    timeoutMs: 20_000,
    retries: 3,
    minRetryDelayMs: 1,
    maxRetryDelayMs: 1,
    ...options,
  });
}

const jsonStart = `{"id":"${RUN_ID}","status":"PROCESSING","spec_name":"`;

describe('DataFramerClient reads at most MAX_RUN_BODY_BYTES (32 MiB) of a body', () => {
  it('stops reading a 200 MB body (no content-length) past the cap, and does not retry it', async () => {
    const server = await api({ status: 200, prefix: jsonStart, fillBytes: 200 * MB });
    const error = await client(server.url)
      .readRun(RUN_ID)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseTooLargeError);
    expect(error).toMatchObject({
      code: 'RESPONSE_TOO_LARGE',
      retryable: false,
      status: 200,
      limitBytes: 32 * MB,
      runId: RUN_ID,
    });
    await server.answers[0]!.closed;
    expect(server.answers).toHaveLength(1);
    // The cap, plus what socket buffers hold when the client hangs up: nowhere near 200 MB.
    expect(server.answers[0]!.sent).toBeLessThan(70 * MB);
  });

  it('refuses a declared content-length above the cap without waiting for the body', async () => {
    // One chunk, then nothing: a client that read on would wait for 200 MB that never come.
    const server = await api({
      status: 200,
      headers: { 'content-length': String(200 * MB) },
      prefix: jsonStart,
      hang: true,
    });
    await expect(client(server.url, { retries: 0 }).readRun(RUN_ID)).rejects.toMatchObject({
      code: 'RESPONSE_TOO_LARGE',
    });
    await server.answers[0]!.closed;
  });

  it('reads a body of exactly the cap, and refuses one byte more', async () => {
    const body = JSON.stringify(runBody({ spec_name: '' }));
    const exact = await api({ status: 200, prefix: body });
    const size = Buffer.byteLength(body);
    await expect(client(exact.url, { maxBodyBytes: size }).readRun(RUN_ID)).resolves.toMatchObject({
      run: { id: RUN_ID },
    });
    await exact.close();
    const over = await api({ status: 200, prefix: `${body} ` });
    await expect(client(over.url, { maxBodyBytes: size }).readRun(RUN_ID)).rejects.toBeInstanceOf(
      ResponseTooLargeError,
    );
  });

  it('never reads the body of an error answer', async () => {
    const server = await api({ status: 404, prefix: '{"detail":"', fillBytes: 200 * MB });
    await expect(client(server.url).readRun(RUN_ID)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await server.answers[0]!.closed;
    expect(server.answers[0]!.sent).toBeLessThan(40 * MB);
  });
});
