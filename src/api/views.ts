import type { Delivery } from '../domain/delivery.js';
import type { RunRecord } from '../domain/run.js';
import { redactUrl } from '../util/http.js';
import { predictedEndWindow } from '../watch/poll-policy.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A run as `GET /api/runs` lists it (docs/api.md). */
export function runItem(record: RunRecord, deliveries: readonly Delivery[], now: number) {
  const run = record.snapshot;
  const total = run?.runtime_params?.number_of_samples ?? null;
  const done = (run?.samples_completed ?? 0) + (run?.samples_failed ?? 0);
  const active = record.finishedAt === null;
  const window =
    active && total
      ? predictedEndWindow({
          unchangedPolls: record.unchangedPolls,
          totalSamples: total,
          progress: record.progress,
          watchedMs: now - record.addedAt,
        })
      : null;
  return {
    run_id: record.runId,
    source: record.source,
    status: record.status,
    samples_completed: run?.samples_completed ?? null,
    samples_failed: run?.samples_failed ?? null,
    number_of_samples: total,
    percent: total ? Math.floor((Math.min(done, total) * 100) / total) : null,
    total_cost: run?.total_cost ?? null,
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
