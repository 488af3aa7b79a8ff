import type { DatabaseSync } from 'node:sqlite';

/**
 * The schema of `watcher.sqlite`, as ordered steps: step i brings `PRAGMA user_version` from i to
 * i + 1. Append only: a step that has shipped is never edited, since files in the field are
 * already past it.
 *
 * Columns are not declared STRICT on purpose: a stray fractional millisecond must not make a
 * write fail; what is read back is validated instead (sqlite-store.ts). CHECK constraints are
 * kept to facts that can never change (counts are not negative), because SQLite cannot alter a
 * CHECK without rebuilding the table; value sets that may grow (finish types, delivery states)
 * are validated on read.
 */
export const MIGRATIONS: readonly string[] = [
  // v1: runs and the outbox.
  `
  CREATE TABLE runs (
    run_id TEXT PRIMARY KEY NOT NULL,
    added_at INTEGER NOT NULL,
    status TEXT,
    snapshot TEXT,
    next_due_at INTEGER NOT NULL,
    unchanged_polls INTEGER NOT NULL CHECK (unchanged_polls >= 0),
    not_found_count INTEGER NOT NULL CHECK (not_found_count >= 0),
    progress_start_at INTEGER,
    progress_start_done INTEGER,
    progress_last_at INTEGER,
    progress_last_done INTEGER,
    finished_at INTEGER,
    outcome TEXT
  );
  CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    type TEXT NOT NULL,
    receiver_url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // v2: receivers disabled by 410 survive a restart; indexes for the two startup reads.
  `
  CREATE TABLE disabled_receivers (
    url TEXT PRIMARY KEY NOT NULL,
    disabled_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_by_state ON deliveries (state, next_attempt_at);
  CREATE INDEX runs_active ON runs (added_at) WHERE finished_at IS NULL;
  `,
  // v3: what the poll policy needs to place batched progress between two looks (poll-policy.ts).
  `
  ALTER TABLE runs ADD COLUMN last_polled_at INTEGER;
  ALTER TABLE runs ADD COLUMN progress_last_after INTEGER;
  ALTER TABLE runs ADD COLUMN progress_change_at INTEGER;
  ALTER TABLE runs ADD COLUMN progress_change_done INTEGER;
  ALTER TABLE runs ADD COLUMN progress_change_after INTEGER;
  ALTER TABLE runs ADD COLUMN progress_batched INTEGER NOT NULL DEFAULT 0;
  `,
  // v4: a run ends as not found after 404s for a stretch of time, not after a count of them;
  // retention looks up a run's deliveries.
  `
  ALTER TABLE runs ADD COLUMN not_found_since INTEGER;
  CREATE INDEX deliveries_by_run ON deliveries (run_id);
  `,
  // v5: where a run came from (the run API removes and lists by it), and listing newest first.
  // Rows from before were configured runs; the next start corrects env to file where it must.
  `
  ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'env';
  CREATE INDEX runs_newest ON runs (added_at DESC, run_id DESC);
  `,
  // v6: small facts of the watcher itself (when discovery began).
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The file's schema cannot be brought to the version this build needs. */
export class StoreSchemaError extends Error {
  readonly code = 'STORE_SCHEMA';
  readonly fileVersion: number;
  constructor(message: string, fileVersion: number, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.fileVersion = fileVersion;
  }
}

/**
 * Applies the steps the file lacks, all in one transaction (DDL is transactional in SQLite, and
 * so is `user_version`): a crash mid-way leaves the file at its old version, never half-migrated.
 * Returns the version the file had before.
 */
export function migrate(db: DatabaseSync, steps: readonly string[] = MIGRATIONS): number {
  db.exec('BEGIN IMMEDIATE');
  try {
    const from = userVersion(db);
    if (from > steps.length) {
      throw new StoreSchemaError(
        `state file has schema version ${from}, newer than this build's ${steps.length}; ` +
          'run a newer watcher or use another STATE_DIR',
        from,
      );
    }
    for (let version = from; version < steps.length; version += 1) {
      try {
        db.exec(steps[version]!);
      } catch (error) {
        throw new StoreSchemaError(`schema migration to version ${version + 1} failed`, from, {
          cause: error,
        });
      }
    }
    // PRAGMA takes no bound parameters; the value is an integer of ours.
    if (from !== steps.length) db.exec(`PRAGMA user_version = ${steps.length}`);
    db.exec('COMMIT');
    return from;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

export function userVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  const version = row?.['user_version'];
  if (typeof version !== 'number') throw new Error('PRAGMA user_version returned no number');
  return version;
}
