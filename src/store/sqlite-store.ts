import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Delivery, DeliveryState } from '../domain/delivery.js';
import type { RunRecord } from '../domain/run.js';
import { openLockedDatabase } from './sqlite-lock.js';
import {
  DELIVERY_COLUMNS,
  RUN_COLUMNS,
  deliveryParams,
  runParams,
  toDelivery,
  toRunRecord,
} from './sqlite-rows.js';
import { groupByRun, type RunQuery, type Store } from './store.js';

export { SCHEMA_VERSION, StoreSchemaError } from './migrations.js';
export { DB_FILE, StoreLockedError } from './sqlite-lock.js';
export { StoreCorruptError } from './sqlite-rows.js';

/**
 * The embedded durable store: one SQLite file in STATE_DIR, in WAL mode, used by one process at
 * a time (sqlite-lock.ts says how that is enforced, and what a crash can cost).
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
   * Opens the state directory's database (see openLockedDatabase).
   * @throws StoreLockedError when another process holds the database
   * @throws StoreSchemaError when the file is newer than this build or a migration fails
   */
  static open(stateDir: string): SqliteStore {
    const db = openLockedDatabase(stateDir);
    try {
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

  listRuns(query: RunQuery): RunRecord[] {
    const filters = {
      state: query.state ?? null,
      status: query.status ?? null,
      limit: query.limit,
    };
    // Two statements, so a later page seeks to its cursor through the index instead of scanning.
    const rows = query.after
      ? this.#sql.listRunsAfter.all({
          ...filters,
          after_at: query.after.addedAt,
          after_id: query.after.runId,
        })
      : this.#sql.listRuns.all(filters);
    return rows.map(toRunRecord);
  }

  deliveriesOf(runId: string): Delivery[] {
    return this.#sql.deliveriesOfRun.all(runId).map(toDelivery);
  }

  deliveriesOfRuns(runIds: readonly string[]): Map<string, Delivery[]> {
    return groupByRun(this.#sql.deliveriesOfRuns.all(JSON.stringify(runIds)).map(toDelivery));
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

  getMeta(key: string): string | undefined {
    const value = this.#sql.getMeta.get(key)?.['value'];
    return typeof value === 'string' ? value : undefined;
  }

  setMeta(key: string, value: string): void {
    this.#sql.setMeta.run(key, value);
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

const RUN_FILTERS =
  "($state IS NULL OR ($state = 'active') = (finished_at IS NULL)) " +
  'AND ($status IS NULL OR status = $status)';
const NEWEST_FIRST = 'ORDER BY added_at DESC, run_id DESC LIMIT $limit';

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
    // A NULL filter parameter leaves that filter out.
    listRuns: db.prepare(`SELECT ${runCols} FROM runs WHERE ${RUN_FILTERS} ${NEWEST_FIRST}`),
    listRunsAfter: db.prepare(
      `SELECT ${runCols} FROM runs WHERE (added_at, run_id) < ($after_at, $after_id) ` +
        `AND ${RUN_FILTERS} ${NEWEST_FIRST}`,
    ),
    deliveriesOfRun: db.prepare(
      `SELECT ${dlvCols} FROM deliveries WHERE run_id = ? ORDER BY created_at, rowid`,
    ),
    deliveriesOfRuns: db.prepare(
      `SELECT ${dlvCols} FROM deliveries WHERE run_id IN (SELECT value FROM json_each(?)) ` +
        'ORDER BY created_at, rowid',
    ),
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
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    // The first 410 is the one worth remembering.
    disableReceiver: db.prepare(
      'INSERT INTO disabled_receivers (url, disabled_at) VALUES (?, ?) ON CONFLICT (url) DO NOTHING',
    ),
  } satisfies Record<string, StatementSync>;
  return statements;
}
