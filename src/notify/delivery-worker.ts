import type { Logger } from 'pino';
import type { Receiver } from '../config/schema.js';
import { MinHeap } from '../util/min-heap.js';
import { noMetrics, type MetricsRecorder } from '../http/metrics.js';
import { logEvent } from '../logging.js';
import type { Delivery } from '../domain/delivery.js';
import type { Store } from '../store/store.js';
import { redactUrl } from '../util/http.js';
import {
  noReceiverStep,
  stepAfterAttempt,
  stepBeforeAttempt,
  type Step,
} from './delivery-rules.js';
import { REPLAYABLE, replayed } from './replay.js';
import type { AttemptResult, WebhookSender } from './webhook-sender.js';

export interface DeliveryWorkerOptions {
  store: Store;
  sender: Pick<WebhookSender, 'send'>;
  receivers: readonly Receiver[];
  defaultTimeoutMs: number;
  defaultRetryScheduleMs: readonly number[];
  logger: Logger;
  concurrency?: number;
  /** Wall clock, for the due times kept in the store. */
  now?: () => number;
  /** Monotonic clock, for waiting: a wall-clock step must not stretch a retry's wait. */
  monotonicNow?: () => number;
  random?: () => number;
  metrics?: MetricsRecorder;
  /** Called whenever the worker has nothing pending and nothing in flight. */
  onIdle?: () => void;
}

/** A replay of a delivery that is pending or delivered: nothing to replay. */
export class NotReplayableError extends Error {}

/**
 * Sends what the outbox owes. Every state change of a delivery is saved before the next step,
 * so a restart resumes each one with its attempt count and its `webhook-id`.
 */
export class DeliveryWorker {
  readonly #o: Required<Omit<DeliveryWorkerOptions, 'onIdle'>> &
    Pick<DeliveryWorkerOptions, 'onIdle'>;
  readonly #pending = new Map<string, Delivery>();
  readonly #inFlight = new Set<string>();
  readonly #ready: Delivery[] = [];
  readonly #receivers: Map<string, Receiver>;
  readonly #disabled: Set<string>;
  readonly #idleWaiters: (() => void)[] = [];
  /** Due times on the monotonic clock; `#dueKey` tells a live entry from one made stale. */
  readonly #due = new MinHeap<string>();
  readonly #dueKey = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt: number | null = null;
  #stopped = false;

  constructor(options: DeliveryWorkerOptions) {
    this.#o = {
      concurrency: 16,
      now: Date.now,
      monotonicNow: () => performance.now(),
      random: Math.random,
      metrics: noMetrics,
      ...options,
    };
    this.#receivers = new Map(options.receivers.map((r) => [r.url, r]));
    this.#disabled = options.store.disabledReceivers();
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Epoch ms of the oldest delivery still owed, or null. */
  get oldestPendingAt(): number | null {
    let oldest: number | null = null;
    for (const d of this.#pending.values())
      if (oldest === null || d.createdAt < oldest) oldest = d.createdAt;
    return oldest;
  }

  /** Loads what the store still owes (after a restart) and starts sending. */
  start(): void {
    this.enqueue(this.#o.store.pendingDeliveries());
  }

  /**
   * Owes a settled delivery again while running (docs/api.md): saved first, its receiver
   * enabled again, then sent. Null when there is no such delivery.
   * @throws Error when the delivery will still be sent anyway (pending) or was delivered
   */
  replay(deliveryId: string): Delivery | null {
    const delivery = this.#o.store.getDelivery(deliveryId);
    if (!delivery) return null;
    if (!REPLAYABLE.includes(delivery.state))
      throw new NotReplayableError(
        `delivery ${deliveryId} is ${delivery.state}; only dead_lettered or disabled ones are replayed`,
      );
    const owed = replayed(delivery, this.#o.now());
    this.#o.store.replayDeliveries([owed]);
    this.#disabled.delete(owed.receiverUrl);
    this.enqueue([owed]);
    return owed;
  }

  /** Takes deliveries already saved in the store. */
  enqueue(deliveries: readonly Delivery[]): void {
    for (const delivery of deliveries) {
      this.#pending.set(delivery.id, delivery);
      this.#schedule(delivery);
    }
    this.#wake();
  }

  /** Turns the stored (wall-clock) due time into a wait on the monotonic clock, once. */
  #schedule(delivery: Delivery): void {
    const waitMs = Math.max(0, delivery.nextAttemptAt - this.#o.now());
    const key = this.#o.monotonicNow() + waitMs;
    this.#dueKey.set(delivery.id, key);
    this.#due.push(key, delivery.id);
  }

  /**
   * Moves what is due to the ready queue and sets one timer for the next due time. The due
   * times live in a heap, so neither a fan-out of thousands of deliveries nor a retry round
   * rescans everything pending (entries made stale by a later retry are skipped).
   */
  #wake(): void {
    if (this.#stopped) return;
    const now = this.#o.monotonicNow();
    while ((this.#due.peekKey() ?? Infinity) <= now) {
      const key = this.#due.peekKey();
      const delivery = this.#pending.get(this.#due.pop()!);
      if (!delivery || this.#inFlight.has(delivery.id) || this.#dueKey.get(delivery.id) !== key)
        continue;
      this.#dueKey.delete(delivery.id);
      this.#inFlight.add(delivery.id);
      this.#ready.push(delivery);
    }
    this.#pump();
    const next = this.#due.peekKey();
    if (next !== undefined && next !== this.#timerAt) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timerAt = next;
      this.#timer = setTimeout(
        () => {
          this.#timer = null;
          this.#timerAt = null;
          this.#wake();
        },
        Math.max(0, next - now),
      );
    }
    this.#notifyIfIdle();
  }

  #active = 0;

  #pump(): void {
    while (!this.#stopped && this.#active < this.#o.concurrency && this.#ready.length > 0) {
      const delivery = this.#ready.shift()!;
      this.#active += 1;
      void this.#attempt(delivery).finally(() => {
        this.#active -= 1;
        this.#inFlight.delete(delivery.id);
        if (this.#pending.has(delivery.id)) {
          this.#schedule(delivery);
          this.#wake();
        }
        this.#pump();
        this.#notifyIfIdle();
      });
    }
  }

  async #attempt(delivery: Delivery): Promise<void> {
    const receiver = this.#receivers.get(delivery.receiverUrl);
    const skip = stepBeforeAttempt({
      receiverConfigured: receiver !== undefined,
      receiverDisabled: this.#disabled.has(delivery.receiverUrl),
      attempts: delivery.attempts,
      retries: receiver ? this.#retrySchedule(receiver).length : 0,
      lastError: delivery.lastError,
    });
    if (skip || !receiver) {
      const step = skip ?? noReceiverStep();
      this.#o.metrics.deliveryAttempted(step.metric);
      this.#settle(delivery, step.state, step.error);
      this.#log(delivery, step, { error: step.error });
      return;
    }
    // The attempt is counted (and its retry time set) before it is made: if the process stops
    // or dies while the receiver is still answering, the restart sees it, so a receiver slower
    // than the shutdown grace still moves toward dead-letter instead of being tried forever.
    delivery.attempts += 1;
    delivery.lastError = 'attempt interrupted: the watcher stopped before the receiver answered';
    delivery.nextAttemptAt = this.#retryAt(delivery, receiver, null) ?? this.#o.now();
    delivery.updatedAt = this.#o.now();
    this.#o.store.saveDelivery(delivery);
    let result: AttemptResult;
    try {
      result = await this.#o.sender.send({
        url: delivery.receiverUrl,
        messageId: delivery.messageId,
        body: delivery.body,
        timeoutMs: receiver.timeoutMs ?? this.#o.defaultTimeoutMs,
      });
    } catch (error) {
      result = { kind: 'retry', reason: (error as Error).message, retryAfterMs: null };
    }
    const step = stepAfterAttempt(
      result,
      result.kind === 'retry' ? this.#retryAt(delivery, receiver, result.retryAfterMs) : null,
    );
    this.#o.metrics.deliveryAttempted(step.metric);
    if (step.state === 'pending') {
      delivery.nextAttemptAt = step.nextAttemptAt ?? this.#o.now();
      delivery.lastError = step.error;
      delivery.updatedAt = this.#o.now();
      this.#o.store.saveDelivery(delivery);
    } else {
      if (step.state === 'disabled') {
        this.#disabled.add(delivery.receiverUrl);
        this.#o.store.disableReceiver(delivery.receiverUrl, this.#o.now());
      }
      this.#settle(delivery, step.state, step.error);
    }
    this.#log(delivery, step, {
      ...(result.kind === 'delivered' || result.kind === 'disabled'
        ? { status: result.status }
        : {}),
      ...(step.error && step.state !== 'disabled' ? { error: step.error } : {}),
      ...(step.nextAttemptAt
        ? { next_attempt_at: new Date(step.nextAttemptAt).toISOString() }
        : {}),
    });
  }

  #log(delivery: Delivery, step: Step, extra: Record<string, unknown>): void {
    logEvent(this.#o.logger, {
      level: step.level,
      event: step.event,
      runId: delivery.runId,
      msg: step.msg,
      fields: {
        webhook_id: delivery.messageId,
        delivery_id: delivery.id,
        type: delivery.type,
        receiver: redactUrl(delivery.receiverUrl),
        attempts: delivery.attempts,
        ...extra,
      },
    });
  }

  #retrySchedule(receiver: Receiver): readonly number[] {
    return receiver.retryScheduleMs ?? this.#o.defaultRetryScheduleMs;
  }

  /** When the attempt after `delivery.attempts` is due, or null when the schedule is spent. */
  #retryAt(delivery: Delivery, receiver: Receiver, retryAfterMs: number | null): number | null {
    const base = this.#retrySchedule(receiver)[delivery.attempts - 1];
    if (base === undefined) return null;
    // ±20% around the schedule, never sooner than the receiver's Retry-After.
    const waitMs = Math.max(base * (0.8 + 0.4 * this.#o.random()), retryAfterMs ?? 0);
    return this.#o.now() + Math.round(waitMs);
  }

  #settle(delivery: Delivery, state: Delivery['state'], error: string | null): void {
    delivery.state = state;
    delivery.lastError = error;
    delivery.updatedAt = this.#o.now();
    this.#o.store.saveDelivery(delivery);
    this.#pending.delete(delivery.id);
  }

  #notifyIfIdle(): void {
    if (this.#active > 0) return;
    if (this.#idleWaiters.length > 0) this.#idleWaiters.splice(0).forEach((resolve) => resolve());
    if (this.#pending.size === 0) this.#o.onIdle?.();
  }

  /** Stops starting attempts; resolves once those in flight have been recorded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#ready.splice(0).forEach((d) => this.#inFlight.delete(d.id));
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }
}
