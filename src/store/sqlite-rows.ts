import type { SQLInputValue } from 'node:sqlite';
import { z } from 'zod';
import { DELIVERY_STATES, type Delivery } from '../domain/delivery.js';
import { FINISH_TYPES, RUN_SOURCES, type ProgressPoint, type RunRecord } from '../domain/run.js';

/** A row read back does not hold what was written; names the row so it can be inspected. */
export class StoreCorruptError extends Error {
  readonly code = 'STORE_CORRUPT';
  readonly table: 'runs' | 'deliveries';
  readonly rowId: string;
  constructor(table: 'runs' | 'deliveries', rowId: string, detail: string, cause: unknown) {
    super(`corrupt row in ${table} (id ${rowId}): ${detail}`, { cause });
    this.name = new.target.name;
    this.table = table;
    this.rowId = rowId;
  }
}

export const RUN_COLUMNS = [
  'run_id',
  'added_at',
  'status',
  'snapshot',
  'next_due_at',
  'unchanged_polls',
  'not_found_count',
  'progress_start_at',
  'progress_start_done',
  'progress_last_at',
  'progress_last_done',
  'last_polled_at',
  'progress_last_after',
  'progress_change_at',
  'progress_change_done',
  'progress_change_after',
  'progress_batched',
  'not_found_since',
  'finished_at',
  'outcome',
  'source',
] as const;

export const DELIVERY_COLUMNS = [
  'id',
  'message_id',
  'run_id',
  'type',
  'receiver_url',
  'body',
  'state',
  'attempts',
  'next_attempt_at',
  'last_error',
  'created_at',
  'updated_at',
] as const;

type RunColumn = (typeof RUN_COLUMNS)[number];
type DeliveryColumn = (typeof DELIVERY_COLUMNS)[number];

export function runParams(r: RunRecord): Record<RunColumn, SQLInputValue> {
  return {
    run_id: r.runId,
    added_at: r.addedAt,
    status: r.status,
    snapshot: r.snapshot === null ? null : JSON.stringify(r.snapshot),
    next_due_at: r.nextDueAt,
    unchanged_polls: r.unchangedPolls,
    not_found_count: r.notFoundCount,
    progress_start_at: r.progress.start?.at ?? null,
    progress_start_done: r.progress.start?.done ?? null,
    progress_last_at: r.progress.last?.at ?? null,
    progress_last_done: r.progress.last?.done ?? null,
    last_polled_at: r.lastPolledAt,
    progress_last_after: r.progress.last?.after ?? null,
    progress_change_at: r.progress.change?.at ?? null,
    progress_change_done: r.progress.change?.done ?? null,
    progress_change_after: r.progress.change?.after ?? null,
    progress_batched: r.progress.batched ? 1 : 0,
    not_found_since: r.notFoundSince,
    finished_at: r.finishedAt,
    outcome: r.outcome,
    source: r.source,
  };
}

export function deliveryParams(d: Delivery): Record<DeliveryColumn, SQLInputValue> {
  return {
    id: d.id,
    message_id: d.messageId,
    run_id: d.runId,
    type: d.type,
    receiver_url: d.receiverUrl,
    body: d.body,
    state: d.state,
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt,
    last_error: d.lastError,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
  };
}

/**
 * What a snapshot must hold to be used at all. It passed the `Run` schema when it was polled;
 * checking it against today's `Run` again would let a stricter schema in a later release refuse
 * to start on state an older one wrote. The other fields are trusted as they were written.
 */
const StoredSnapshot = z.looseObject({ id: z.string(), status: z.string() });

const JsonText = z.string().transform((text, ctx): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    ctx.issues.push({ code: 'custom', message: 'not valid JSON', input: text });
    return z.NEVER;
  }
});

const Millis = z.number();
const Count = z.int().nonnegative();

const RunRow = z
  .object({
    run_id: z.string().min(1),
    added_at: Millis,
    status: z.string().nullable(),
    snapshot: JsonText.pipe(StoredSnapshot).nullable(),
    next_due_at: Millis,
    unchanged_polls: Count,
    not_found_count: Count,
    progress_start_at: Millis.nullable(),
    progress_start_done: Count.nullable(),
    progress_last_at: Millis.nullable(),
    progress_last_done: Count.nullable(),
    last_polled_at: Millis.nullable(),
    progress_last_after: Millis.nullable(),
    progress_change_at: Millis.nullable(),
    progress_change_done: Count.nullable(),
    progress_change_after: Millis.nullable(),
    progress_batched: z.union([z.literal(0), z.literal(1)]),
    not_found_since: Millis.nullable(),
    finished_at: Millis.nullable(),
    outcome: z.enum(FINISH_TYPES).nullable(),
    source: z.enum(RUN_SOURCES),
  })
  .transform((row, ctx): RunRecord => {
    const point = (
      at: number | null,
      done: number | null,
      name: string,
      after: number | null = null,
    ): ProgressPoint | null => {
      if (at === null && done === null) return null;
      // Rows older than v3 have no `after`: the change is then taken as seen when it happened.
      if (at !== null && done !== null) return { at, done, after: after ?? at };
      ctx.issues.push({ code: 'custom', message: `${name}: half a progress point`, input: row });
      return null;
    };
    return {
      runId: row.run_id,
      source: row.source,
      addedAt: row.added_at,
      status: row.status,
      snapshot: row.snapshot,
      nextDueAt: row.next_due_at,
      unchangedPolls: row.unchanged_polls,
      notFoundCount: row.not_found_count,
      notFoundSince: row.not_found_since,
      progress: {
        start: point(row.progress_start_at, row.progress_start_done, 'progress_start'),
        last: point(
          row.progress_last_at,
          row.progress_last_done,
          'progress_last',
          row.progress_last_after,
        ),
        change: point(
          row.progress_change_at,
          row.progress_change_done,
          'progress_change',
          row.progress_change_after,
        ),
        batched: row.progress_batched === 1,
      },
      lastPolledAt: row.last_polled_at,
      finishedAt: row.finished_at,
      outcome: row.outcome,
    };
  });

const DeliveryRow = z
  .object({
    id: z.string().min(1),
    message_id: z.string().min(1),
    run_id: z.string().min(1),
    type: z.enum(FINISH_TYPES),
    receiver_url: z.string().min(1),
    body: z.string(),
    state: z.enum(DELIVERY_STATES),
    attempts: Count,
    next_attempt_at: Millis,
    last_error: z.string().nullable(),
    created_at: Millis,
    updated_at: Millis,
  })
  .transform((row): Delivery => ({
    id: row.id,
    messageId: row.message_id,
    runId: row.run_id,
    type: row.type,
    receiverUrl: row.receiver_url,
    body: row.body,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }));

/** A row as the record it holds, or StoreCorruptError naming the row. */
function parseRow<T>(
  schema: z.ZodType<T>,
  table: 'runs' | 'deliveries',
  idColumn: string,
): (row: Record<string, unknown>) => T {
  return (row) => {
    const parsed = schema.safeParse(row);
    if (parsed.success) return parsed.data;
    const detail = z.prettifyError(parsed.error);
    throw new StoreCorruptError(table, String(row[idColumn]), detail, parsed.error);
  };
}

export const toRunRecord = parseRow(RunRow, 'runs', 'run_id');
export const toDelivery = parseRow(DeliveryRow, 'deliveries', 'id');
