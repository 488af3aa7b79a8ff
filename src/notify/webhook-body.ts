import { deliveryIdFor, messageIdFor, type Delivery } from '../domain/delivery.js';
import {
  MAX_WEBHOOK_FILES,
  summarizeRun,
  type FinishType,
  type RunRecord,
  type RunSummary,
  type StoredRun,
} from '../domain/run.js';

/** The webhook body (docs/events.md); `data` is null-filled where the API said nothing usable. */
export interface WebhookBody {
  type: FinishType;
  timestamp: string;
  data: { run_id: string } & RunSummary;
}

export function buildWebhookBody(
  type: FinishType,
  runId: string,
  snapshot: StoredRun | null,
  at: Date,
): WebhookBody {
  return {
    type,
    timestamp: at.toISOString(),
    data: { run_id: runId, ...summarizeRun(snapshot, MAX_WEBHOOK_FILES) },
  };
}

/**
 * What a finished run owes: one delivery of the same body, under the same `webhook-id`, to each
 * receiver. The body is fixed now, so every retry and replay sends the same bytes.
 */
export function owedDeliveries(
  record: RunRecord,
  type: FinishType,
  receiverUrls: readonly string[],
  now: number,
): Delivery[] {
  const messageId = messageIdFor(record.runId, type);
  const body = JSON.stringify(buildWebhookBody(type, record.runId, record.snapshot, new Date(now)));
  return receiverUrls.map((receiverUrl) => ({
    id: deliveryIdFor(messageId, receiverUrl),
    messageId,
    runId: record.runId,
    type,
    receiverUrl,
    body,
    state: 'pending',
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  }));
}
