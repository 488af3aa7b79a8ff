import { createHash } from 'node:crypto';
import type { FinishType } from './run.js';

export const DELIVERY_STATES = ['pending', 'delivered', 'disabled', 'dead_lettered'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** One webhook message owed to one receiver (a row of the outbox). */
export interface Delivery {
  id: string;
  /** The Standard Webhooks `webhook-id`: the same for every receiver and every attempt. */
  messageId: string;
  runId: string;
  type: FinishType;
  receiverUrl: string;
  /** The exact JSON body, fixed when the run finished so that retries are byte-identical. */
  body: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * The `webhook-id` of a run's terminal event: derived from the run and the event alone, so
 * every redelivery (after a retry, a crash or a replay) carries the same id.
 */
export function messageIdFor(runId: string, type: FinishType): string {
  return `msg_${runId.replaceAll('-', '')}_${type.slice('run.'.length)}`;
}

/** One delivery per message and receiver: the same id however often the finish is written. */
export function deliveryIdFor(messageId: string, receiverUrl: string): string {
  return `dlv_${createHash('sha256').update(`${messageId}\n${receiverUrl}`).digest('hex').slice(0, 20)}`;
}
