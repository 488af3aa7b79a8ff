import type { GeneratedFile, Run, TerminalStatus } from '../dataframer/schema.js';
import { MAX_STATUS_CHARS, clip } from '../logging.js';

/** Most generated files listed in a webhook; `generated_files_total` gives the real count. */
export const MAX_WEBHOOK_FILES = 1_000;
/** Most generated files listed in the `run.finished` log line. */
export const MAX_LOG_FILES = 20;

export const FINISH_TYPES = [
  'run.succeeded',
  'run.failed',
  'run.canceled',
  'run.not_found',
  'run.watch_timeout',
] as const;
export type FinishType = (typeof FINISH_TYPES)[number];

export function finishTypeFor(status: TerminalStatus): FinishType {
  return status === 'SUCCEEDED'
    ? 'run.succeeded'
    : status === 'FAILED'
      ? 'run.failed'
      : 'run.canceled';
}

/** What the webhook and the `run.finished` line say of a run, every part of it bounded. */
export interface RunSummary {
  status: string | null;
  samples_completed: number | null;
  samples_failed: number | null;
  number_of_samples: number | null;
  total_cost: number | null;
  /** At most the `maxFiles` given, each with the spec's fields only. */
  generated_files: GeneratedFile[];
  generated_files_total: number;
  generated_files_truncated: boolean;
  spec_id: string | null;
  spec_name: string | null;
  spec_version: number | null;
  dataset_id: string | null;
  dataset_name: string | null;
  created_at: string | null;
  completed_at: string | null;
}

/** The webhook body (README, Webhooks); `data` is null-filled where the API said nothing usable. */
export interface WebhookBody {
  type: FinishType;
  timestamp: string;
  data: { run_id: string } & Omit<RunSummary, 'number_of_samples'>;
}

const text = (value: string | null | undefined): string | null =>
  value === undefined || value === null ? null : clip(value);

/**
 * A file as the spec describes it, strings cut: a snapshot stored before unknown fields were
 * dropped at parsing may still carry some, and they never pass through.
 */
function fileSummary(file: GeneratedFile): GeneratedFile {
  return {
    ...(file.id !== undefined ? { id: clip(file.id) } : {}),
    ...(file.path !== undefined ? { path: clip(file.path) } : {}),
    ...(file.file_type !== undefined ? { file_type: clip(file.file_type) } : {}),
    ...(file.size_bytes !== undefined ? { size_bytes: file.size_bytes } : {}),
  };
}

/** A snapshot as the store keeps it: its file list may be cut, with the real count beside it. */
export type StoredRun = Run & { generated_files_total?: number };

/** How many files the run generated, also when its stored file list was cut. */
export function filesTotal(snapshot: StoredRun | null): number {
  return snapshot?.generated_files_total ?? snapshot?.generated_files?.length ?? 0;
}

/** The one place that decides what of a run goes out, for the webhook and the log line alike. */
export function summarizeRun(snapshot: StoredRun | null, maxFiles: number): RunSummary {
  const files = snapshot?.generated_files ?? [];
  const total = Math.max(filesTotal(snapshot), files.length);
  return {
    status: snapshot ? clip(snapshot.status, MAX_STATUS_CHARS) : null,
    samples_completed: snapshot?.samples_completed ?? null,
    samples_failed: snapshot?.samples_failed ?? null,
    number_of_samples: snapshot?.runtime_params?.number_of_samples ?? null,
    total_cost: snapshot?.total_cost ?? null,
    generated_files: files.slice(0, maxFiles).map(fileSummary),
    generated_files_total: total,
    generated_files_truncated: total > maxFiles,
    spec_id: text(snapshot?.spec_id),
    spec_name: text(snapshot?.spec_name),
    spec_version: snapshot?.spec_version ?? null,
    dataset_id: text(snapshot?.dataset_id),
    dataset_name: text(snapshot?.dataset_name),
    created_at: text(snapshot?.created_at),
    completed_at: text(snapshot?.completed_at),
  };
}

/**
 * The `webhook-id` of a run's terminal event: derived from the run and the event alone, so
 * every redelivery (after a retry, a crash or a replay) carries the same id.
 */
export function messageIdFor(runId: string, type: FinishType): string {
  return `msg_${runId.replaceAll('-', '')}_${type.slice('run.'.length)}`;
}

export function buildWebhookBody(
  type: FinishType,
  runId: string,
  snapshot: Run | null,
  at: Date,
): WebhookBody {
  // number_of_samples is the log line's; the webhook's fields stay as documented.
  const { number_of_samples: _logOnly, ...data } = summarizeRun(snapshot, MAX_WEBHOOK_FILES);
  return { type, timestamp: at.toISOString(), data: { run_id: runId, ...data } };
}
