import type { Delivery } from '../domain/delivery.js';
import { summarizeRun, type RunRecord } from '../domain/run.js';
import { redactUrl } from '../util/http.js';
import { pollStateOf, predictedEndWindow } from '../watch/poll-policy.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A run as `GET /api/runs` lists it (docs/api.md): its summary, as the webhook's, and more. */
export function runItem(record: RunRecord, deliveries: readonly Delivery[], now: number) {
  const summary = summarizeRun(record.snapshot, 0);
  const total = summary.number_of_samples;
  const done = (summary.samples_completed ?? 0) + (summary.samples_failed ?? 0);
  const active = record.finishedAt === null;
  const window = active ? predictedEndWindow(pollStateOf(record, now)) : null;
  return {
    run_id: record.runId,
    source: record.source,
    status: summary.status,
    samples_completed: summary.samples_completed,
    samples_failed: summary.samples_failed,
    number_of_samples: total,
    percent: total ? Math.floor((Math.min(done, total) * 100) / total) : null,
    total_cost: summary.total_cost,
    added_at: iso(record.addedAt),
    last_polled_at: iso(record.lastPolledAt),
    next_poll_at: active ? iso(record.nextDueAt) : null,
    predicted_end: window && { earliest: iso(window.start), latest: iso(window.end) },
    outcome: record.outcome,
    finished_at: iso(record.finishedAt),
    deliveries: deliveries.map((d) => ({
      receiver: redactUrl(d.receiverUrl),
      state: d.state,
      attempts: d.attempts,
    })),
  };
}

/** A delivery in full, as `GET /api/runs/{run_id}` shows it. */
export function deliveryView(d: Delivery) {
  return {
    delivery_id: d.id,
    webhook_id: d.messageId,
    type: d.type,
    receiver: redactUrl(d.receiverUrl),
    state: d.state,
    attempts: d.attempts,
    last_error: d.lastError,
    next_attempt_at: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
  };
}

/** One run in full: the list's fields, its last snapshot, and each delivery. */
export function runDetail(record: RunRecord, deliveries: readonly Delivery[], now: number) {
  return {
    ...runItem(record, deliveries, now),
    snapshot: record.snapshot,
    deliveries: deliveries.map(deliveryView),
  };
}
