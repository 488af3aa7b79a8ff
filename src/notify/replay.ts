import type { Delivery, DeliveryState } from '../domain/delivery.js';

/** Deliveries a replay may take: the ones that will not be sent otherwise. */
export const REPLAYABLE: readonly DeliveryState[] = ['dead_lettered', 'disabled'];

/**
 * A delivery owed again: the same body and `webhook-id`, attempts from zero, due now;
 * `receiverUrl` and `id` move it to another receiver.
 */
export function replayed(
  delivery: Delivery,
  now: number,
  receiverUrl = delivery.receiverUrl,
  id = delivery.id,
): Delivery {
  return {
    ...delivery,
    id,
    receiverUrl,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    updatedAt: now,
  };
}
