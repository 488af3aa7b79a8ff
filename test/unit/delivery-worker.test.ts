import { describe, expect, it, jest } from '@jest/globals';
import { createLogger } from '../../src/logging.js';
import { DeliveryWorker } from '../../src/notify/delivery-worker.js';
import type { AttemptResult, WebhookMessage } from '../../src/notify/webhook-sender.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Delivery } from '../../src/domain/delivery.js';
import { newDelivery as delivery } from '../helpers/delivery.js';
import { createLogSink } from '../helpers/log-sink.js';
import { useFakeClock } from '../helpers/fake-clock.js';

const A = 'http://127.0.0.1:1/a';
const B = 'http://127.0.0.1:1/b';

useFakeClock(0);

/** A sender whose answers are scripted per receiver URL; it records when each attempt happened. */
function setup(script: Record<string, AttemptResult[]>, random = 0.5) {
  const sent: { url: string; at: number; messageId: string }[] = [];
  const sender = {
    send: (m: WebhookMessage) => {
      sent.push({ url: m.url, at: Date.now(), messageId: m.messageId });
      return Promise.resolve(script[m.url]?.shift() ?? { kind: 'delivered' as const, status: 200 });
    },
  };
  const store = new MemoryStore();
  const sink = createLogSink();
  let idle = 0;
  const worker = new DeliveryWorker({
    store,
    sender,
    receivers: [{ url: A }, { url: B }],
    defaultTimeoutMs: 15_000,
    defaultRetryScheduleMs: [5_000, 300_000],
    logger: createLogger({ level: 'info', format: 'json', secrets: [], destination: sink.stream }),
    random: () => random,
    onIdle: () => (idle += 1),
  });
  const enqueue = (...deliveries: Delivery[]) => {
    for (const d of deliveries) store.saveDelivery(d);
    worker.enqueue(deliveries);
  };
  return { worker, store, sent, sink, enqueue, idleCount: () => idle };
}

describe('DeliveryWorker', () => {
  it('records an attempt when it starts, so one cut short by a stop still counts', async () => {
    const store = new MemoryStore();
    // A receiver that has not answered when the watcher stops.
    const worker = new DeliveryWorker({
      store,
      sender: { send: () => new Promise<AttemptResult>(() => {}) },
      receivers: [{ url: A }],
      defaultTimeoutMs: 15_000,
      defaultRetryScheduleMs: [5_000, 300_000],
      logger: createLogger({ level: 'silent', format: 'json', secrets: [] }),
      random: () => 0.5,
    });
    store.saveDelivery(delivery('1', A));
    worker.enqueue([delivery('1', A)]);
    await jest.advanceTimersByTimeAsync(0);
    expect(store.getDelivery('1')).toMatchObject({
      state: 'pending',
      attempts: 1,
      nextAttemptAt: 5_000, // the first retry's time, should this attempt never finish
    });
    expect(store.getDelivery('1')?.lastError).toContain('interrupted');
  });

  it('dead-letters, without sending, a delivery whose last allowed attempt was cut short', async () => {
    const { enqueue, store, sent, sink } = setup({});
    // Schedule [5 s, 300 s]: three attempts in all, and three were counted before a crash.
    enqueue({ ...delivery('1', A), attempts: 3, lastError: 'attempt interrupted' });
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(0);
    expect(store.getDelivery('1')).toMatchObject({ state: 'dead_lettered', attempts: 3 });
    expect(sink.byEvent('webhook.dead_lettered')).toHaveLength(1);
  });

  it('waits for a retry on the monotonic clock: a backward wall-clock step does not stretch it', async () => {
    const { enqueue, store, sent } = setup({
      [A]: [{ kind: 'retry', reason: 'HTTP 503', retryAfterMs: null }],
    });
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(1); // failed; the retry is due 5 s later (random 0.5: no jitter)
    jest.setSystemTime(Date.now() - 3_600_000);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(2);
    expect(store.getDelivery('1')?.state).toBe('delivered');
  });

  it('delivers at once and reports idle', async () => {
    const { enqueue, store, sent, sink, idleCount } = setup({});
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(1);
    expect(store.getDelivery('1')).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(sink.byEvent('webhook.delivered')[0]).toMatchObject({
      run_id: 'run-1',
      webhook_id: 'msg_1',
      receiver: 'http://127.0.0.1:1/a',
      attempts: 1,
    });
    expect(idleCount()).toBeGreaterThan(0);
  });

  it('retries a 500 on the schedule, with ±20% jitter', async () => {
    const retry: AttemptResult = { kind: 'retry', reason: 'HTTP 500', retryAfterMs: null };
    const { enqueue, store, sent, sink } = setup({ [A]: [retry, retry] }, 1);
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(0);
    // random 1 => +20%: 6 s, then 360 s.
    expect(store.getDelivery('1')).toMatchObject({
      state: 'pending',
      attempts: 1,
      nextAttemptAt: 6_000,
      lastError: 'HTTP 500',
    });
    await jest.advanceTimersByTimeAsync(5_999);
    expect(sent).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => s.at)).toEqual([0, 6_000]);
    await jest.advanceTimersByTimeAsync(360_000);
    expect(sent.map((s) => s.at)).toEqual([0, 6_000, 366_000]);
    expect(new Set(sent.map((s) => s.messageId))).toEqual(new Set(['msg_1']));
    expect(store.getDelivery('1')).toMatchObject({ state: 'delivered', attempts: 3 });
    expect(sink.byEvent('webhook.retrying')).toHaveLength(2);
  });

  it('waits at least as long as Retry-After asks', async () => {
    const { enqueue, store } = setup({
      [A]: [{ kind: 'retry', reason: 'HTTP 429', retryAfterMs: 60_000 }],
    });
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(0);
    expect(store.getDelivery('1')?.nextAttemptAt).toBe(60_000);
  });

  it('dead-letters once the schedule is exhausted', async () => {
    const retry: AttemptResult = { kind: 'retry', reason: 'ECONNREFUSED', retryAfterMs: null };
    const { enqueue, store, sink } = setup({ [A]: [retry, retry, retry] });
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(1_000_000);
    expect(store.getDelivery('1')).toMatchObject({
      state: 'dead_lettered',
      attempts: 3,
      lastError: 'ECONNREFUSED',
    });
    expect(sink.byEvent('webhook.dead_lettered')).toHaveLength(1);
  });

  it('dead-letters a 4xx at once and keeps it', async () => {
    const { enqueue, store, sent } = setup({ [A]: [{ kind: 'rejected', reason: 'HTTP 400' }] });
    enqueue(delivery('1', A));
    await jest.advanceTimersByTimeAsync(1_000_000);
    expect(sent).toHaveLength(1);
    expect(store.listDeliveries('dead_lettered').map((d) => d.id)).toEqual(['1']);
  });

  it('disables a receiver that answers 410, and only that one', async () => {
    const { enqueue, store, sent, sink } = setup({ [A]: [{ kind: 'disabled', status: 410 }] });
    enqueue(delivery('1', A), delivery('2', B));
    await jest.advanceTimersByTimeAsync(0);
    enqueue(delivery('3', A), delivery('4', B));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent.map((s) => s.url)).toEqual([A, B, B]);
    expect(store.getDelivery('3')).toMatchObject({ state: 'disabled', attempts: 0 });
    expect(store.getDelivery('4')).toMatchObject({ state: 'delivered' });
    expect(store.disabledReceivers()).toEqual(new Set([A]));
    // One line for the 410, one for each delivery that is then not attempted.
    expect(
      sink
        .byEvent('webhook.receiver_disabled')
        .map((l) => [l['delivery_id'], l['status'] ?? l['error']]),
    ).toEqual([
      ['1', 410],
      ['3', 'receiver disabled by 410'],
    ]);
  });

  it('dead-letters, with a log line, what is owed to a receiver no longer configured', async () => {
    const { enqueue, store, sent, sink } = setup({});
    enqueue(delivery('1', 'http://127.0.0.1:1/removed'));
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(0);
    expect(store.getDelivery('1')).toMatchObject({
      state: 'dead_lettered',
      lastError: 'receiver no longer configured',
    });
    expect(sink.byEvent('webhook.dead_lettered')).toHaveLength(1);
  });

  it('keeps one timer for many retries and sends each when due', async () => {
    const retry: AttemptResult = { kind: 'retry', reason: 'HTTP 503', retryAfterMs: null };
    const { enqueue, sent } = setup({ [A]: Array.from({ length: 300 }, () => retry) }, 0);
    enqueue(
      ...Array.from({ length: 300 }, (_, i) => ({
        ...delivery(String(i), A),
        nextAttemptAt: i * 10,
      })),
    );
    await jest.advanceTimersByTimeAsync(3_000);
    expect(sent).toHaveLength(300);
    expect(jest.getTimerCount()).toBe(1);
    // random 0 => 80% of 5 s after each first attempt.
    await jest.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(600);
    expect(sent[300]).toMatchObject({ at: 4_000 });
  });

  it('resumes what the store still owes on start', async () => {
    const { worker, store, sent } = setup({});
    store.saveDelivery({ ...delivery('old', A), attempts: 2, nextAttemptAt: 10_000 });
    worker.start();
    await jest.advanceTimersByTimeAsync(9_999);
    expect(sent).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(1);
    expect(store.getDelivery('old')).toMatchObject({ state: 'delivered', attempts: 3 });
  });

  it('finishes the attempt in flight on stop and starts no other', async () => {
    let release: (r: AttemptResult) => void = () => {};
    const store = new MemoryStore();
    const worker = new DeliveryWorker({
      store,
      sender: { send: () => new Promise<AttemptResult>((resolve) => (release = resolve)) },
      receivers: [{ url: A }],
      defaultTimeoutMs: 1_000,
      defaultRetryScheduleMs: [1_000],
      logger: createLogger({
        level: 'silent',
        format: 'json',
        secrets: [],
        destination: createLogSink().stream,
      }),
      concurrency: 1,
    });
    const pending = [delivery('1', A), delivery('2', A)];
    pending.forEach((d) => store.saveDelivery(d));
    worker.enqueue(pending);
    await jest.advanceTimersByTimeAsync(0);
    const stopped = worker.stop();
    release({ kind: 'delivered', status: 200 });
    await stopped;
    expect(store.getDelivery('1')?.state).toBe('delivered');
    expect(store.getDelivery('2')).toMatchObject({ state: 'pending', attempts: 0 });
  });
});
