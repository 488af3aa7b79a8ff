import type { GeneratedFile, Run, TerminalStatus } from '../dataframer/schema.js';
import { MAX_STATUS_CHARS, clip } from '../util/text.js';

/** Most generated files listed in a webhook; `generated_files_total` gives the real count. */
export const MAX_WEBHOOK_FILES = 1_000;
/** Most generated files listed in the `run.finished` log line. */
export const MAX_LOG_FILES = 20;

/** How a watched run can end: the webhook's `type`, and the outcome kept in the store. */
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

export interface ProgressPoint {
  /** Epoch ms of the poll that saw it. */
  at: number;
  /** samples_completed + samples_failed. */
  done: number;
  /**
   * When the count may have changed: the last poll that still saw the previous count, if one
   * saw it unchanged (a plateau), else `at`. Progress reported in batches changed somewhere in
   * (after, at]; progress that moved at every look is taken as current at `at`.
   */
  after: number;
}

/** What the poll policy measures a run's speed from (docs/polling.md). */
export interface Progress {
  /** The first progress seen once the run left PENDING; the rate is measured from here. */
  start: ProgressPoint | null;
  /** The latest change of progress seen (also while PENDING). */
  last: ProgressPoint | null;
  /**
   * The first change of progress seen after `start`. A first look can land anywhere in a step
   * of progress reported in batches; a change cannot, so once a second change is seen the rate
   * is measured from this point.
   */
  change: ProgressPoint | null;
  /** A look found the count unchanged while the run moved: progress comes in batches. */
  batched: boolean;
}

export const NO_PROGRESS: Progress = { start: null, last: null, change: null, batched: false };

/** Where a watched run came from (docs/api.md, Where runs come from). */
export const RUN_SOURCES = ['env', 'file', 'api', 'discovery'] as const;
export type RunSource = (typeof RUN_SOURCES)[number];

/** A snapshot as the store keeps it: its file list may be cut, with the real count beside it. */
export type StoredRun = Run & { generated_files_total?: number };

/** Everything the watcher knows of one run; plain data so any store can keep it. */
export interface RunRecord {
  runId: string;
  source: RunSource;
  addedAt: number;
  /** Last status seen, null before the first successful poll. */
  status: string | null;
  snapshot: StoredRun | null;
  nextDueAt: number;
  /** Epoch ms of the latest poll with an answer (saved with the next change, not every poll). */
  lastPolledAt: number | null;
  /** Polls in a row that saw neither a new status nor new progress. */
  unchangedPolls: number;
  notFoundCount: number;
  /** Epoch ms of the first 404 of the current stretch of 404s; null once the run answers. */
  notFoundSince: number | null;
  progress: Progress;
  finishedAt: number | null;
  outcome: FinishType | null;
}

export function newRunRecord(
  runId: string,
  now: number,
  firstDueAt: number,
  source: RunSource = 'env',
): RunRecord {
  return {
    runId,
    source,
    addedAt: now,
    status: null,
    snapshot: null,
    nextDueAt: firstDueAt,
    lastPolledAt: null,
    unchangedPolls: 0,
    notFoundCount: 0,
    notFoundSince: null,
    progress: NO_PROGRESS,
    finishedAt: null,
    outcome: null,
  };
}

/**
 * What the webhook's `data` and the `run.finished` line say of a run (docs/events.md), every
 * part of it bounded. Both are built from this one summary, so they cannot drift apart.
 */
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
 * The record as it is kept in memory and in the store: the webhook and the log line are built
 * from the full answer first, so a snapshot needs no more files than a webhook can carry.
 */
export function storedRecord(record: RunRecord): RunRecord {
  const files = record.snapshot?.generated_files;
  if (!record.snapshot || !files || files.length <= MAX_WEBHOOK_FILES) return record;
  // The real count goes with the cut list, for webhooks built later from the stored snapshot.
  const snapshot: StoredRun = {
    ...record.snapshot,
    generated_files: files.slice(0, MAX_WEBHOOK_FILES),
    generated_files_total: filesTotal(record.snapshot),
  };
  return { ...record, snapshot };
}
