import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { DemoReceiver, type DemoReceiverOptions } from '../../src/demo/receiver.js';
import { messageIdFor } from '../../src/domain/delivery.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { WebhookSender } from '../../src/notify/webhook-sender.js';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const RUN_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
const RECEIVED_AT = Date.parse('2026-11-23T06:00:05.000Z');

const event = {
  type: 'run.succeeded',
  timestamp: '2026-11-23T06:00:00.000Z',
  data: {
    run_id: RUN_ID,
    status: 'SUCCEEDED',
    samples_completed: 98,
    samples_failed: 2,
    total_cost: 1.37,
    generated_files: [
      { id: 'f1', path: 'out/data.csv', file_type: 'text/csv', size_bytes: 1024 },
      { id: 'f2', path: 'out/report.json', file_type: 'application/json', size_bytes: 2048 },
    ],
    spec_id: null,
    spec_name: 'claims',
    spec_version: 3,
    dataset_id: null,
    dataset_name: null,
    created_at: '2026-11-23T05:00:00.000Z',
    completed_at: '2026-11-23T05:59:00.000Z',
  },
};

let receiver: DemoReceiver;
let url: string;
let lines: string[];

async function startReceiver(options: Partial<DemoReceiverOptions> = {}): Promise<void> {
  receiver = new DemoReceiver({
    secret: SECRET,
    print: (line) => lines.push(line),
    now: () => RECEIVED_AT,
    ...options,
  });
  url = await receiver.listen();
}

function signed(
  id: string,
  body: string,
  at = new Date(),
  secret = SECRET,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

async function post(body: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { method: 'POST', body, headers });
  await res.body?.cancel();
  return res.status;
}

beforeEach(() => {
  lines = [];
});

afterEach(async () => {
  await receiver.close();
});

describe('DemoReceiver', () => {
  it('accepts a validly signed event, records it and prints one line', async () => {
    await startReceiver();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhook$/);
    const body = JSON.stringify(event);
    expect(await post(body, signed('msg_1', body))).toBe(200);
    expect(receiver.deliveries).toEqual([
      { webhookId: 'msg_1', body: event, receivedAt: RECEIVED_AT },
    ]);
    expect(lines).toEqual(['✔ run.succeeded 3c90c3cc… SUCCEEDED 98 ok / 2 failed $1.37 2 files']);
    expect([receiver.attempts, receiver.duplicates, receiver.rejected]).toEqual([1, 0, 0]);
  });

  it('rejects a tampered body, a wrong key, missing headers and a stale timestamp with 401', async () => {
    await startReceiver();
    const body = JSON.stringify(event);
    const tampered = body.replace('"total_cost":1.37', '"total_cost":0.01');
    expect(tampered).not.toBe(body);
    expect(await post(tampered, signed('msg_1', body))).toBe(401);
    expect(await post(body, signed('msg_1', body, new Date(), OTHER_SECRET))).toBe(401);
    expect(await post(body, { 'content-type': 'application/json' })).toBe(401);
    const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
    expect(await post(body, signed('msg_1', body, tenMinutesAgo))).toBe(401);
    const tenMinutesAhead = new Date(Date.now() + 10 * 60 * 1000);
    expect(await post(body, signed('msg_1', body, tenMinutesAhead))).toBe(401);
    expect(receiver.rejected).toBe(5);
    expect(receiver.attempts).toBe(5);
    expect(receiver.deliveries).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('acknowledges a duplicate webhook-id but records and prints it once', async () => {
    await startReceiver();
    const body = JSON.stringify(event);
    expect(await post(body, signed('msg_dup', body))).toBe(200);
    // A redelivery is signed afresh (new timestamp) but keeps its id.
    expect(await post(body, signed('msg_dup', body, new Date(Date.now() + 1_000)))).toBe(200);
    expect(receiver.deliveries).toHaveLength(1);
    expect([receiver.attempts, receiver.duplicates, receiver.rejected]).toEqual([2, 1, 0]);
    expect(lines).toHaveLength(1);
  });

  it('lets a test force a status; a refused attempt is not a delivery', async () => {
    const contexts: { webhookId: string; attempt: number }[] = [];
    await startReceiver({
      respond: (ctx) => {
        contexts.push(ctx);
        return ctx.attempt === 1 ? 503 : undefined;
      },
    });
    const body = JSON.stringify(event);
    expect(await post(body, signed('msg_r', body))).toBe(503);
    expect(receiver.deliveries).toEqual([]);
    expect(await post(body, signed('msg_r', body))).toBe(200);
    expect(contexts).toEqual([
      { webhookId: 'msg_r', attempt: 1 },
      { webhookId: 'msg_r', attempt: 2 },
    ]);
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.duplicates).toBe(0);
  });

  it('answers 400 to a signed body that is not JSON, and 405 to other methods', async () => {
    await startReceiver();
    expect(await post('not json', signed('msg_x', 'not json'))).toBe(400);
    expect(receiver.deliveries).toEqual([]);
    const res = await fetch(url);
    expect(res.status).toBe(405);
    await res.body?.cancel();
  });

  it('verifies what the watcher WebhookSender sends', async () => {
    await startReceiver();
    const sender = new WebhookSender(SECRET);
    const payload = buildWebhookBody('run.failed', RUN_ID, null, new Date('2026-11-23T06:00:00Z'));
    const messageId = messageIdFor(RUN_ID, 'run.failed');
    const message = { url, messageId, body: JSON.stringify(payload), timeoutMs: 5_000 };
    expect(await sender.send(message)).toEqual({ kind: 'delivered', status: 200 });
    expect(await sender.send(message)).toEqual({ kind: 'delivered', status: 200 });
    expect(receiver.deliveries).toEqual([
      { webhookId: messageId, body: payload, receivedAt: RECEIVED_AT },
    ]);
    expect(receiver.duplicates).toBe(1);
    expect(lines).toEqual(['✘ run.failed 3c90c3cc… - - ok / - failed $- 0 files']);
  });
});
