import { afterEach, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { messageIdFor } from '../../src/domain/delivery.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { WebhookSender } from '../../src/notify/webhook-sender.js';
import { Run } from '../../src/dataframer/schema.js';
import { startCaptureServer } from '../helpers/capture-server.js';
import { runBody } from '../helpers/run-body.js';
import { MB, startBodyServer, type BodyPlan } from './body-server.js';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
const RUN_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';

let close: (() => Promise<void>) | null = null;
afterEach(async () => {
  await close?.();
  close = null;
});

async function serverReplying(status: number, headers: Record<string, string> = {}, delayMs = 0) {
  const server = await startCaptureServer(() => ({ status, headers, delayMs }));
  close = server.close;
  return server;
}

function message(url: string, timeoutMs = 2_000) {
  const run = Run.parse(
    runBody({
      id: RUN_ID,
      status: 'SUCCEEDED',
      samples_completed: 98,
      samples_failed: 2,
      total_cost: 1.37,
    }),
  );
  const body = JSON.stringify(
    buildWebhookBody('run.succeeded', RUN_ID, run, new Date('2026-11-23T06:00:00.000Z')),
  );
  return { url, messageId: messageIdFor(RUN_ID, 'run.succeeded'), body, timeoutMs };
}

describe('WebhookSender over real HTTP', () => {
  it('signs so that the official standardwebhooks verify accepts it, with the design body', async () => {
    const server = await serverReplying(204);
    const result = await new WebhookSender(SECRET).send(message(`${server.url}/hook`));
    expect(result).toEqual({ kind: 'delivered', status: 204 });
    const [req] = server.requests;
    expect(req).toMatchObject({ method: 'POST', path: '/hook' });
    expect(req?.headers['content-type']).toBe('application/json');
    const verified = new Webhook(SECRET).verify(req!.body, req!.headers as Record<string, string>);
    expect(verified).toEqual({
      type: 'run.succeeded',
      timestamp: '2026-11-23T06:00:00.000Z',
      data: {
        run_id: RUN_ID,
        status: 'SUCCEEDED',
        samples_completed: 98,
        samples_failed: 2,
        number_of_samples: 123,
        total_cost: 1.37,
        generated_files: [
          { id: '<string>', path: '<string>', file_type: '<string>', size_bytes: 123 },
        ],
        generated_files_total: 1,
        generated_files_truncated: false,
        spec_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
        spec_name: '<string>',
        spec_version: 123,
        dataset_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
        dataset_name: '<string>',
        created_at: '2023-11-07T05:31:56Z',
        completed_at: '2023-11-07T05:31:56Z',
      },
    });
    expect(req?.headers['webhook-id']).toBe('msg_3c90c3cc0d444b5088888dd25736052a_succeeded');
  });

  it('fails verification when the body is tampered with', async () => {
    const server = await serverReplying(200);
    await new WebhookSender(SECRET).send(message(server.url));
    const [req] = server.requests;
    const tampered = req!.body.replace('"SUCCEEDED"', '"FAILED"');
    expect(() =>
      new Webhook(SECRET).verify(tampered, req!.headers as Record<string, string>),
    ).toThrow();
  });

  it.each([
    [410, { kind: 'disabled', status: 410 }],
    [400, { kind: 'rejected', reason: 'HTTP 400' }],
    [422, { kind: 'rejected', reason: 'HTTP 422' }],
    [500, { kind: 'retry', reason: 'HTTP 500', retryAfterMs: null }],
    [408, { kind: 'retry', reason: 'HTTP 408', retryAfterMs: null }],
  ])('classifies HTTP %i', async (status, expected) => {
    const server = await serverReplying(status);
    expect(await new WebhookSender(SECRET).send(message(server.url))).toEqual(expected);
  });

  it('honours Retry-After on 429', async () => {
    const server = await serverReplying(429, { 'retry-after': '120' });
    expect(await new WebhookSender(SECRET).send(message(server.url))).toEqual({
      kind: 'retry',
      reason: 'HTTP 429',
      retryAfterMs: 120_000,
    });
  });

  it('treats a redirect as a failure and does not follow it', async () => {
    const server = await serverReplying(302, { location: '/elsewhere' });
    expect(await new WebhookSender(SECRET).send(message(server.url))).toMatchObject({
      kind: 'retry',
      reason: 'HTTP 302',
    });
    expect(server.requests).toHaveLength(1);
  });

  it('retries after a timeout', async () => {
    const server = await serverReplying(200, {}, 1_000);
    expect(await new WebhookSender(SECRET).send(message(server.url, 50))).toMatchObject({
      kind: 'retry',
      reason: 'ETIMEDOUT',
    });
  });

  it('retries when nobody listens', async () => {
    const server = await serverReplying(200);
    await server.close();
    close = null;
    expect(await new WebhookSender(SECRET).send(message(server.url))).toMatchObject({
      kind: 'retry',
      reason: 'ECONNREFUSED',
    });
  });
});

describe('WebhookSender and the reply body (read up to MAX_REPLY_BYTES, 4 KiB)', () => {
  async function receiverStreaming(plan: BodyPlan) {
    const server = await startBodyServer(() => plan);
    close = server.close;
    return server;
  }

  it('counts a 2xx as delivered once the headers are in, however slow the body', async () => {
    // A body that never ends: waiting for it would end the attempt in a timeout instead.
    const server = await receiverStreaming({
      status: 200,
      prefix: 'accepted, still writing',
      hang: true,
    });
    expect(await new WebhookSender(SECRET).send(message(server.url, 5_000))).toEqual({
      kind: 'delivered',
      status: 200,
    });
  });

  it.each([
    [200, { kind: 'delivered', status: 200 }],
    [500, { kind: 'retry', reason: 'HTTP 500', retryAfterMs: null }],
    [400, { kind: 'rejected', reason: 'HTTP 400' }],
  ])('decides a %i by its status and hangs up on a 300 MB reply', async (status, expected) => {
    const server = await receiverStreaming({ status, prefix: 'x', fillBytes: 300 * MB });
    expect(await new WebhookSender(SECRET).send(message(server.url, 20_000))).toEqual(expected);
    await server.answers[0]!.closed;
    // A few KB read, plus what socket buffers hold when the sender hangs up.
    expect(server.answers[0]!.sent).toBeLessThan(40 * MB);
  });
});
