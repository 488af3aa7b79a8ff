import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { z } from 'zod';
import { FINISH_TYPES } from '../notify/payload.js';
import { migrate } from './migrations.js';
import type { Delivery, DeliveryState, ProgressPoint, RunRecord, Store } from './types.js';

export { SCHEMA_VERSION, StoreSchemaError } from './migrations.js';

export const DB_FILE = 'watcher.sqlite';
/** The pid lock file of releases before the kernel-held lock; removed when found. */
const LEGACY_LOCK_FILE = 'watcher.lock';
const BUSY_TIMEOUT_MS = 5_000;
/** SQLITE_BUSY and SQLITE_LOCKED, the primary codes of "another connection holds the lock". */
const LOCKED_CODES = new Set([5, 6]);

/** Another watcher, or a `deliveries` command, holds the state directory's database. */
export class StoreLockedError extends Error {
  readonly code = 'STORE_LOCKED';
  readonly stateDir: string;
  constructor(stateDir: string, options?: ErrorOptions) {
    super(
      `state directory ${stateDir} is in use by another watcher or deliveries command (its ` +
        'database is locked); stop that process or use another STATE_DIR',
      options,
    );
    this.name = new.target.name;
    this.stateDir = stateDir;
  }
}

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

/**
 * The embedded durable store: one SQLite file in STATE_DIR, in WAL mode, used by one process at
 * a time.
 *
 * One process at a time is enforced by the kernel, not by a pid file: the connection runs in
 * `locking_mode=EXCLUSIVE` and takes the write lock at open, so it holds a POSIX lock on the
 * file for as long as it lives. The kernel drops that lock when the process dies, however it
 * dies (SIGKILL, OOM, a zombie whose files are closed), and the lock is the same across pid
 * namespaces, so two containers sharing a volume cannot both open it. Network filesystems
 * whose locks do not work (some NFS setups) are not supported for STATE_DIR.
 *
 * `synchronous=NORMAL` with WAL: a commit is appended to the WAL before `COMMIT` returns, but the
 * WAL is fsynced only at checkpoints. A killed process (`kill -9`, OOM) therefore loses nothing,
 * since the bytes are in the OS page cache; a power cut or kernel crash may lose the last few
 * commits but never corrupts the file (https://sqlite.org/pragma.html#pragma_synchronous). A
 * lost finish is then re-detected by polling the run again, and a lost delivery update resends
 * with the same `webhook-id`, which receivers deduplicate. If the filesystem refuses WAL, the
 * store falls back to `synchronous=FULL`, since NORMAL with a rollback journal can corrupt.
 */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof prepareStatements>;
  #closed = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#sql = prepareStatements(db);
  }

  /**
   * Opens (creating if needed) `<stateDir>/watcher.sqlite` and takes its lock; `':memory:'`
   * opens a private in-memory database. A new directory is created 0700 and a new file 0600:
   * the store keeps receiver URLs, which may carry tokens.
   * @throws StoreLockedError when another process holds the database
   * @throws StoreSchemaError when the file is newer than this build or a migration fails
   */
  static open(stateDir: string): SqliteStore {
    if (stateDir === ':memory:') return new SqliteStore(openDatabase(':memory:', stateDir));
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = join(stateDir, DB_FILE);
    closeSync(openSync(file, 'a', 0o600)); // SQLite gives its -wal and -shm files this mode too
    const db = openDatabase(file, stateDir);
    try {
      removeLegacyLockFile(stateDir);
      return new SqliteStore(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  loadActiveRuns(): RunRecord[] {
    return this.#sql.activeRuns.all().map(toRunRecord);
  }

  getRun(runId: string): RunRecord | undefined {
    const row = this.#sql.getRun.get(runId);
    return row && toRunRecord(row);
  }

  addRun(record: RunRecord): boolean {
    return this.#sql.insertRun.run(runParams(record)).changes > 0;
  }

  saveRun(record: RunRecord): void {
    this.#sql.upsertRun.run(runParams(record));
  }

  removeRun(runId: string): void {
    this.#sql.deleteRun.run(runId);
  }

  /** The outbox write: the run's end and the deliveries it owes commit together or not at all. */
  finishRun(record: RunRecord, deliveries: Delivery[]): void {
    this.#transaction(() => {
      this.#sql.upsertRun.run(runParams(record));
      for (const delivery of deliveries) this.#sql.upsertDelivery.run(deliveryParams(delivery));
    });
  }

  pendingDeliveries(): Delivery[] {
    return this.listDeliveries('pending');
  }

  listDeliveries(state?: DeliveryState): Delivery[] {
    const rows =
      state === undefined ? this.#sql.allDeliveries.all() : this.#sql.deliveriesByState.all(state);
    return rows.map(toDelivery);
  }

  getDelivery(id: string): Delivery | undefined {
    const row = this.#sql.getDelivery.get(id);
    return row && toDelivery(row);
  }

  saveDelivery(delivery: Delivery): void {
    this.#sql.upsertDelivery.run(deliveryParams(delivery));
  }

  disabledReceivers(): Set<string> {
    return new Set(this.#sql.disabledReceivers.all().map((row) => String(row['url'])));
  }

  disableReceiver(url: string, at: number): void {
    this.#sql.disableReceiver.run(url, at);
  }

  replayDeliveries(deliveries: Delivery[], replacedIds: readonly string[] = []): void {
    this.#transaction(() => {
      for (const id of replacedIds) this.#sql.deleteDelivery.run(id);
      for (const delivery of deliveries) {
        this.#sql.upsertDelivery.run(deliveryParams(delivery));
        this.#sql.enableReceiver.run(delivery.receiverUrl);
      }
    });
  }

  prune(before: number, keepRunIds: ReadonlySet<string>): { runs: number; deliveries: number } {
    let result = { runs: 0, deliveries: 0 };
    this.#transaction(() => {
      const deliveries = Number(this.#sql.pruneDeliveries.run(before).changes);
      let runs = 0;
      for (const row of this.#sql.prunableRuns.all(before)) {
        const runId = String(row['run_id']);
        if (keepRunIds.has(runId)) continue;
        runs += Number(this.#sql.deleteRun.run(runId).changes);
      }
      result = { runs, deliveries };
    });
    return result;
  }

  /** For readiness: the database is open and answers a query. */
  isHealthy(): boolean {
    if (this.#closed) return false;
    try {
      return this.#sql.ping.get()?.['ok'] === 1;
    } catch {
      return false;
    }
  }

  /** Closes the database, which releases its lock; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #transaction(work: () => void): void {
    this.#sql.begin.run();
    try {
      work();
      this.#sql.commit.run();
    } catch (error) {
      // A failed COMMIT (SQLITE_BUSY) leaves the transaction open; some errors end it already.
      if (this.#db.isTransaction) this.#sql.rollback.run();
      throw error;
    }
  }
}

function openDatabase(path: string, stateDir: string): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    // No waiting for the lock: a holder is another watcher, which keeps it for its lifetime.
    db.exec('PRAGMA busy_timeout = 0');
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.['journal_mode'];
    // An empty write transaction takes the exclusive lock now; EXCLUSIVE mode never lets it go.
    db.exec('BEGIN IMMEDIATE; COMMIT');
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // ':memory:' answers 'memory'; a filesystem without shared memory may refuse WAL.
    db.exec(`PRAGMA synchronous = ${mode === 'wal' ? 'NORMAL' : 'FULL'}`);
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    if (isLockedError(error)) throw new StoreLockedError(stateDir, { cause: error });
    throw error;
  }
}

function isLockedError(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && LOCKED_CODES.has(code & 0xff);
}

function removeLegacyLockFile(stateDir: string): void {
  try {
    unlinkSync(join(stateDir, LEGACY_LOCK_FILE));
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

const RUN_COLUMNS = [
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
] as const;

const DELIVERY_COLUMNS = [
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

/** Every statement, prepared once: a write costs the same with ten runs or ten thousand. */
function prepareStatements(db: DatabaseSync) {
  const runCols = RUN_COLUMNS.join(', ');
  const runValues = RUN_COLUMNS.map((c) => `$${c}`).join(', ');
  const runUpdates = RUN_COLUMNS.slice(1)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  const dlvCols = DELIVERY_COLUMNS.join(', ');
  const dlvValues = DELIVERY_COLUMNS.map((c) => `$${c}`).join(', ');
  const dlvUpdates = DELIVERY_COLUMNS.slice(1)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  const statements = {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    // Served by the partial index runs_active: finished runs are never read at startup.
    activeRuns: db.prepare(
      `SELECT ${runCols} FROM runs WHERE finished_at IS NULL ORDER BY added_at, rowid`,
    ),
    getRun: db.prepare(`SELECT ${runCols} FROM runs WHERE run_id = ?`),
    insertRun: db.prepare(`INSERT OR IGNORE INTO runs (${runCols}) VALUES (${runValues})`),
    upsertRun: db.prepare(
      `INSERT INTO runs (${runCols}) VALUES (${runValues}) ` +
        `ON CONFLICT (run_id) DO UPDATE SET ${runUpdates}`,
    ),
    deleteRun: db.prepare('DELETE FROM runs WHERE run_id = ?'),
    // Served by the index deliveries_by_state, in the order they fall due.
    deliveriesByState: db.prepare(
      `SELECT ${dlvCols} FROM deliveries WHERE state = ? ORDER BY next_attempt_at, rowid`,
    ),
    allDeliveries: db.prepare(`SELECT ${dlvCols} FROM deliveries ORDER BY created_at, rowid`),
    getDelivery: db.prepare(`SELECT ${dlvCols} FROM deliveries WHERE id = ?`),
    // Same semantics as MemoryStore.saveDelivery: the latest state of a delivery wins.
    upsertDelivery: db.prepare(
      `INSERT INTO deliveries (${dlvCols}) VALUES (${dlvValues}) ` +
        `ON CONFLICT (id) DO UPDATE SET ${dlvUpdates}`,
    ),
    disabledReceivers: db.prepare('SELECT url FROM disabled_receivers'),
    enableReceiver: db.prepare('DELETE FROM disabled_receivers WHERE url = ?'),
    deleteDelivery: db.prepare('DELETE FROM deliveries WHERE id = ?'),
    pruneDeliveries: db.prepare(
      "DELETE FROM deliveries WHERE state = 'delivered' AND updated_at < ?",
    ),
    // Finished runs that owe nothing: every delivery they made was delivered.
    prunableRuns: db.prepare(
      'SELECT run_id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? AND NOT EXISTS ' +
        "(SELECT 1 FROM deliveries d WHERE d.run_id = runs.run_id AND d.state != 'delivered')",
    ),
    ping: db.prepare('SELECT 1 AS ok'),
    // The first 410 is the one worth remembering.
    disableReceiver: db.prepare(
      'INSERT INTO disabled_receivers (url, disabled_at) VALUES (?, ?) ON CONFLICT (url) DO NOTHING',
    ),
  } satisfies Record<string, StatementSync>;
  return statements;
}

type RunColumn = (typeof RUN_COLUMNS)[number];
type DeliveryColumn = (typeof DELIVERY_COLUMNS)[number];

function runParams(r: RunRecord): Record<RunColumn, SQLInputValue> {
  return {
    run_id: r.runId,
    added_at: r.addedAt,
    status: r.status,
    snapshot: r.snapshot === null ? null : JSON.stringify(r.snapshot),
    next_due_at: r.nextDueAt,
    unchanged_polls: r.unchangedPolls,
    not_found_count: r.notFoundCount,
    progress_start_at: r.progressStart?.at ?? null,
    progress_start_done: r.progressStart?.done ?? null,
    progress_last_at: r.progressLast?.at ?? null,
    progress_last_done: r.progressLast?.done ?? null,
    last_polled_at: r.lastPolledAt,
    progress_last_after: r.progressLast?.after ?? null,
    progress_change_at: r.progressChange?.at ?? null,
    progress_change_done: r.progressChange?.done ?? null,
    progress_change_after: r.progressChange?.after ?? null,
    progress_batched: r.progressBatched ? 1 : 0,
    not_found_since: r.notFoundSince,
    finished_at: r.finishedAt,
    outcome: r.outcome,
  };
}

function deliveryParams(d: Delivery): Record<DeliveryColumn, SQLInputValue> {
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

const DELIVERY_STATES = {
  pending: 'pending',
  delivered: 'delivered',
  disabled: 'disabled',
  dead_lettered: 'dead_lettered',
} as const satisfies Record<DeliveryState, DeliveryState>;

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
      addedAt: row.added_at,
      status: row.status,
      snapshot: row.snapshot,
      nextDueAt: row.next_due_at,
      unchangedPolls: row.unchanged_polls,
      notFoundCount: row.not_found_count,
      notFoundSince: row.not_found_since,
      progressStart: point(row.progress_start_at, row.progress_start_done, 'progress_start'),
      progressLast: point(
        row.progress_last_at,
        row.progress_last_done,
        'progress_last',
        row.progress_last_after,
      ),
      progressChange: point(
        row.progress_change_at,
        row.progress_change_done,
        'progress_change',
        row.progress_change_after,
      ),
      progressBatched: row.progress_batched === 1,
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

function toRunRecord(row: Record<string, unknown>): RunRecord {
  const parsed = RunRow.safeParse(row);
  if (parsed.success) return parsed.data;
  throw new StoreCorruptError(
    'runs',
    String(row['run_id']),
    z.prettifyError(parsed.error),
    parsed.error,
  );
}

function toDelivery(row: Record<string, unknown>): Delivery {
  const parsed = DeliveryRow.safeParse(row);
  if (parsed.success) return parsed.data;
  throw new StoreCorruptError(
    'deliveries',
    String(row['id']),
    z.prettifyError(parsed.error),
    parsed.error,
  );
}

/** Not `instanceof Error`: errors from another realm (a vm context, as under jest) fail that. */
function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
    ? error.code
    : undefined;
}
