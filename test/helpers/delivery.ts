import type { Delivery } from '../../src/domain/delivery.js';

/** A fresh pending delivery of run `run-<id>` to `receiverUrl`; `overrides` set the rest. */
export function newDelivery(
  id: string,
  receiverUrl: string,
  overrides: Partial<Delivery> = {},
): Delivery {
  return {
    id,
    messageId: `msg_${id}`,
    runId: `run-${id}`,
    type: 'run.succeeded',
    receiverUrl,
    body: '{}',
    state: 'pending',
    attempts: 0,
    nextAttemptAt: 0,
    lastError: null,
    createdAt: 0,
    updatedAt: 0,
    ...overrides,
  };
}
