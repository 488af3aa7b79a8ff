import type { DeliveryState } from '../domain/delivery.js';
import type { EventLevel, EventName } from '../logging.js';
import type { AttemptResult } from './webhook-sender.js';

/** What one step makes of a delivery, and how it is logged and counted. */
export interface Step {
  state: DeliveryState;
  /** The `outcome` label of webhook_deliveries_total. */
  metric: string;
  level: EventLevel;
  event: EventName;
  msg: string;
  error: string | null;
  nextAttemptAt?: number;
}

type Rule = Omit<Step, 'error' | 'nextAttemptAt'>;

/** Every way a delivery can move, in one table (docs/webhooks.md, Retries). */
export const RULES = {
  delivered: {
    state: 'delivered',
    metric: 'delivered',
    level: 'info',
    event: 'webhook.delivered',
    msg: 'webhook delivered',
  },
  gone: {
    state: 'disabled',
    metric: 'disabled',
    level: 'warn',
    event: 'webhook.receiver_disabled',
    msg: 'receiver answered 410 Gone; no more deliveries to it',
  },
  rejected: {
    state: 'dead_lettered',
    metric: 'dead_lettered',
    level: 'error',
    event: 'webhook.dead_lettered',
    msg: 'receiver rejected the webhook; kept for replay',
  },
  retrying: {
    state: 'pending',
    metric: 'retrying',
    level: 'warn',
    event: 'webhook.retrying',
    msg: 'webhook attempt failed; will retry',
  },
  exhausted: {
    state: 'dead_lettered',
    metric: 'dead_lettered',
    level: 'error',
    event: 'webhook.dead_lettered',
    msg: 'webhook retries exhausted; kept for replay',
  },
  exhaustedByInterruption: {
    state: 'dead_lettered',
    metric: 'dead_lettered',
    level: 'error',
    event: 'webhook.dead_lettered',
    msg: 'webhook retries exhausted (the last attempt was cut short); kept for replay',
  },
  noReceiver: {
    state: 'dead_lettered',
    metric: 'dead_lettered',
    level: 'error',
    event: 'webhook.dead_lettered',
    msg: 'receiver is no longer configured; kept for replay',
  },
  receiverDisabled: {
    state: 'disabled',
    metric: 'skipped_disabled',
    level: 'warn',
    event: 'webhook.receiver_disabled',
    msg: 'receiver was disabled by a 410; delivery not attempted',
  },
} as const satisfies Record<string, Rule>;

export interface BeforeAttempt {
  /** The receiver is still in the config. */
  receiverConfigured: boolean;
  /** The receiver answered 410 to an earlier delivery. */
  receiverDisabled: boolean;
  /** Attempts already made (an interrupted one counts). */
  attempts: number;
  /** How many retries the receiver's schedule allows after the first attempt. */
  retries: number;
  lastError: string | null;
}

/**
 * A delivery that is not sent, but never dropped in silence: a receiver taken out of the config
 * leaves a replayable dead letter; one that answered 410 asked for nothing more; one whose every
 * attempt was made, the last cut short by a stop or crash, is dead-lettered. Null: send it.
 */
export function stepBeforeAttempt(situation: BeforeAttempt): Step | null {
  if (!situation.receiverConfigured) return noReceiverStep();
  if (situation.receiverDisabled)
    return { ...RULES.receiverDisabled, error: 'receiver disabled by 410' };
  if (situation.attempts <= situation.retries) return null;
  return { ...RULES.exhaustedByInterruption, error: situation.lastError };
}

export function noReceiverStep(): Step {
  return { ...RULES.noReceiver, error: 'receiver no longer configured' };
}

/**
 * What one attempt's result makes of the delivery; `retryAt` is when the next attempt is due,
 * or null when the retry schedule is spent.
 */
export function stepAfterAttempt(result: AttemptResult, retryAt: number | null): Step {
  switch (result.kind) {
    case 'delivered':
      return { ...RULES.delivered, error: null };
    case 'disabled':
      return { ...RULES.gone, error: 'HTTP 410' };
    case 'rejected':
      return { ...RULES.rejected, error: result.reason };
    case 'retry':
      return retryAt === null
        ? { ...RULES.exhausted, error: result.reason }
        : { ...RULES.retrying, error: result.reason, nextAttemptAt: retryAt };
  }
}
