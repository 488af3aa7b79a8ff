import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { migrate } from './migrations.js';

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

/**
 * Opens (creating if needed) `<stateDir>/watcher.sqlite`, takes its lock for the life of the
 * connection and brings its schema up to date; `':memory:'` opens a private in-memory database.
 * A new directory is created 0700 and a new file 0600: the store keeps receiver URLs, which may
 * carry tokens.
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
 * @throws StoreLockedError when another process holds the database
 * @throws StoreSchemaError when the file is newer than this build or a migration fails
 */
export function openLockedDatabase(stateDir: string): DatabaseSync {
  if (stateDir === ':memory:') return openDatabase(':memory:', stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, DB_FILE);
  closeSync(openSync(file, 'a', 0o600)); // SQLite gives its -wal and -shm files this mode too
  const db = openDatabase(file, stateDir);
  try {
    removeLegacyLockFile(stateDir);
    return db;
  } catch (error) {
    db.close();
    throw error;
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

/** Not `instanceof Error`: errors from another realm (a vm context, as under jest) fail that. */
function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
    ? error.code
    : undefined;
}
