import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { z } from 'zod';
import { FINISH_TYPES } from '../notify/payload.js';
import { migrate } from './migrations.js';
import type { Delivery, DeliveryState, ProgressPoint, RunRecord, Store } from './types.js';

export { SCHEMA_VERSION, StoreSchemaError } from './migrations.js';

export const DB_FILE = 'watcher.sqlite';
export const LOCK_FILE = 'watcher.lock';
const BUSY_TIMEOUT_MS = 5_000;
/** A lock file without a readable pid younger than this is being written by its owner right now. */
const UNREADABLE_LOCK_GRACE_MS = 5_000;

/** Another watcher (another process, or this one) already holds the state directory. */
export class StoreLockedError extends Error {
  readonly code = 'STORE_LOCKED';
  readonly stateDir: string;
  /** The pid written in the lock file; null when it could not be read. */
  readonly pid: number | null;
  constructor(stateDir: string, pid: number | null) {
    const holder =
      pid === process.pid
        ? 'this process'
        : pid === null
          ? 'another watcher (pid unknown)'
          : `another watcher (pid ${pid})`;
    super(
      `state directory ${stateDir} is already in use by ${holder}; stop it or use another ` +
        `STATE_DIR (if no watcher runs there, delete ${join(stateDir, LOCK_FILE)})`,
    );
    this.name = new.target.name;
    this.stateDir = stateDir;
    this.pid = pid;
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
 * The embedded durable store (DESIGN.md, Durability): one SQLite file in STATE_DIR, in WAL mode,
 * used by one process at a time.
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
  readonly #lock: StateLock | null;
  readonly #sql: ReturnType<typeof prepareStatements>;
  #closed = false;

  private constructor(db: DatabaseSync, lock: StateLock | null) {
    this.#db = db;
    this.#lock = lock;
    this.#sql = prepareStatements(db);
  }

  /**
   * Opens (creating if needed) `<stateDir>/watcher.sqlite`, after taking the directory's lock;
   * `':memory:'` opens a private in-memory database with no lock and no file.
   * @throws StoreLockedError when another live watcher holds the directory
   * @throws StoreSchemaError when the file is newer than this build or a migration fails
   */
  static open(stateDir: string): SqliteStore {
    if (stateDir === ':memory:') return new SqliteStore(openDatabase(':memory:'), null);
    mkdirSync(stateDir, { recursive: true });
    const lock = StateLock.acquire(stateDir);
    try {
      const db = openDatabase(join(lock.dir, DB_FILE));
      try {
        return new SqliteStore(db, lock);
      } catch (error) {
        db.close();
        throw error;
      }
    } catch (error) {
      lock.release();
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

  /** For readiness: the database is open and answers a query. */
  isHealthy(): boolean {
    if (this.#closed) return false;
    try {
      return this.#sql.ping.get()?.['ok'] === 1;
    } catch {
      return false;
    }
  }

  /** Closes the database and releases the directory's lock; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db.close();
    } finally {
      this.#lock?.release();
    }
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

function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.['journal_mode'];
    // ':memory:' answers 'memory'; a filesystem without shared memory may refuse WAL.
    db.exec(`PRAGMA synchronous = ${mode === 'wal' ? 'NORMAL' : 'FULL'}`);
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
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

/**
 * Locks whose holder is this process. A lock is process-wide by nature, so this one piece of
 * module state is deliberate: it is what tells a second `open` in this process (refused) from a
 * lock file a previous process with our pid left behind (stale).
 */
const heldLocks = new Set<string>();

/**
 * `<stateDir>/watcher.lock`, created exclusively (`wx`) and holding the owner's pid.
 *
 * A lock left by a dead process (SIGKILL, OOM, power cut) is taken over, so a restart recovers
 * on its own. A lock holding our own pid is stale too: in a container the watcher is usually
 * pid 1 (or the same low pid) on every start, so a lock from the previous run of the container
 * names us. The converse is the caveat: if an unrelated process in the new container happens to
 * have the old pid, the lock looks alive and is refused until the file is deleted by hand.
 * A pid can only be checked on this host: two hosts (or containers with separate pid namespaces)
 * sharing one STATE_DIR volume are not protected, and the design runs one replica per STATE_DIR.
 * Two processes taking over the same stale lock at the same instant can, in a small window, both
 * succeed (each unlinks, one may unlink the other's fresh file); supervisors start one watcher
 * per STATE_DIR, so this is accepted rather than guarded with OS locks Node does not expose.
 */
class StateLock {
  readonly dir: string;
  readonly #path: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.#path = join(dir, LOCK_FILE);
  }

  /** `stateDir` must exist; its real path is the lock's identity, however it is spelled. */
  static acquire(stateDir: string): StateLock {
    const lock = new StateLock(realpathSync(stateDir));
    if (heldLocks.has(lock.#path)) throw new StoreLockedError(lock.dir, process.pid);
    // Each pass either creates the file or removes a stale one; a third pass means a race lost.
    for (let pass = 0; pass < 3; pass += 1) {
      if (lock.#tryCreate()) {
        heldLocks.add(lock.#path);
        return lock;
      }
      const holder = lock.#readHolder();
      if (holder === undefined) continue; // released between our create and read
      if (!isStale(holder)) throw new StoreLockedError(lock.dir, holder.pid);
      removeIfUnchanged(lock.#path, holder.text);
    }
    throw new StoreLockedError(lock.dir, null);
  }

  release(): void {
    if (!heldLocks.delete(this.#path)) return;
    const holder = this.#readHolder();
    // Leave a file that is no longer ours (deleted by hand and taken by another watcher).
    if (holder?.pid === process.pid) removeIfUnchanged(this.#path, holder.text);
  }

  #tryCreate(): boolean {
    let fd: number;
    try {
      fd = openSync(this.#path, 'wx', 0o644);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    return true;
  }

  /** undefined when the file is gone. */
  #readHolder(): LockHolder | undefined {
    try {
      const text = readFileSync(this.#path, 'utf8');
      const ageMs = Date.now() - statSync(this.#path).mtimeMs;
      return { text, pid: parsePid(text), ageMs };
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }
}

interface LockHolder {
  text: string;
  pid: number | null;
  ageMs: number;
}

function isStale(holder: LockHolder): boolean {
  // Between the owner's create and its write the file is empty; give it time before judging.
  if (holder.pid === null) return holder.ageMs > UNREADABLE_LOCK_GRACE_MS;
  return holder.pid === process.pid || !isAlive(holder.pid);
}

function parsePid(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) return null;
  const pid = Number(trimmed);
  // 0 and negative values would address process groups in kill(2).
  return pid > 0 && Number.isSafeInteger(pid) ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence and permission check only
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    if (errnoCode(error) === 'ESRCH') return false;
    if (errnoCode(error) === 'EPERM') return true;
    throw error;
  }
}

/** Narrows the window in which a takeover could delete a lock another process just created. */
function removeIfUnchanged(path: string, expected: string): void {
  try {
    if (readFileSync(path, 'utf8') === expected) unlinkSync(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
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
