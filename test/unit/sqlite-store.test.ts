import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import type { Run } from '../../src/dataframer/schema.js';
import { MIGRATIONS, migrate, userVersion } from '../../src/store/migrations.js';
import {
  DB_FILE,
  SCHEMA_VERSION,
  SqliteStore,
  StoreCorruptError,
  StoreLockedError,
  StoreSchemaError,
} from '../../src/store/sqlite-store.js';
import type { Delivery } from '../../src/domain/delivery.js';
import { newRunRecord, type RunRecord } from '../../src/domain/run.js';
import { runBody } from '../helpers/run-body.js';

const STORE_SOURCE = fileURLToPath(new URL('../../src/store/sqlite-store.ts', import.meta.url));

let dir: string;
const opened: SqliteStore[] = [];
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-store-'));
});
afterEach(() => {
  opened.splice(0).forEach((store) => store.close());
  children.splice(0).forEach((child) => child.kill('SIGKILL'));
  rmSync(dir, { recursive: true, force: true });
});

function open(stateDir = dir): SqliteStore {
  const store = SqliteStore.open(stateDir);
  opened.push(store);
  return store;
}

function record(runId: string, overrides: Partial<RunRecord> = {}): RunRecord {
  return { ...newRunRecord(runId, 1_000, 2_000), ...overrides };
}

function delivery(id: string, overrides: Partial<Delivery> = {}): Delivery {
  return {
    id,
    messageId: `msg_${id}`,
    runId: 'run-1',
    type: 'run.succeeded',
    receiverUrl: 'http://127.0.0.1:1/hook',
    body: '{"type":"run.succeeded"}',
    state: 'pending',
    attempts: 0,
    nextAttemptAt: 5_000,
    lastError: null,
    createdAt: 5_000,
    updatedAt: 5_000,
    ...overrides,
  };
}

function progressing(runId: string): RunRecord {
  return record(runId, {
    status: 'PROCESSING',
    snapshot: runBody({ status: 'PROCESSING' }) as Run,
    unchangedPolls: 2,
    notFoundCount: 1,
    lastPolledAt: 1_900,
    progress: {
      start: { at: 1_500, done: 3, after: 1_500 },
      last: { at: 1_900, done: 40, after: 1_700 },
      change: { at: 1_700, done: 20, after: 1_600 },
      batched: true,
    },
  });
}

function finished(r: RunRecord): RunRecord {
  return { ...r, status: 'SUCCEEDED', finishedAt: 9_000, outcome: 'run.succeeded' };
}

describe('SqliteStore runs', () => {
  it('round-trips a run with its snapshot and progress', () => {
    const store = open();
    const run = progressing('run-1');
    expect(store.addRun(run)).toBe(true);
    expect(store.getRun('run-1')).toEqual(run);
    expect(store.loadActiveRuns()).toEqual([run]);
    expect(store.getRun('nope')).toBeUndefined();
  });

  it('keeps the first record when a run is added twice', () => {
    const store = open();
    expect(store.addRun(record('run-1', { nextDueAt: 1 }))).toBe(true);
    expect(store.addRun(record('run-1', { nextDueAt: 2 }))).toBe(false);
    expect(store.getRun('run-1')?.nextDueAt).toBe(1);
  });

  it('refuses to re-add a finished run', () => {
    const store = open();
    store.finishRun(finished(record('run-1')), []);
    expect(store.addRun(record('run-1'))).toBe(false);
  });

  it('saves changes, and inserts an unknown run it is asked to save', () => {
    const store = open();
    store.addRun(record('run-1'));
    store.saveRun(progressing('run-1'));
    expect(store.getRun('run-1')).toEqual(progressing('run-1'));
    store.saveRun(record('run-2')); // saving an unknown run inserts it, like MemoryStore
    expect(store.loadActiveRuns().map((r) => r.runId)).toEqual(['run-1', 'run-2']);
  });

  it('loads only the runs not finished, oldest first', () => {
    const store = open();
    store.addRun(record('run-c', { addedAt: 3 }));
    store.addRun(record('run-a', { addedAt: 1 }));
    store.addRun(record('run-b', { addedAt: 2 }));
    store.finishRun(finished(record('run-a', { addedAt: 1 })), []);
    expect(store.loadActiveRuns().map((r) => r.runId)).toEqual(['run-b', 'run-c']);
  });

  it('loads 10,000 active runs in one read', () => {
    const store = open();
    for (let i = 0; i < 10_000; i += 1) store.addRun(progressing(`run-${i}`));
    // How long it takes is the benchmark's to measure (npm run bench -- scale), not a test's.
    const runs = store.loadActiveRuns();
    expect(runs).toHaveLength(10_000);
    expect(runs[9_999]).toEqual(progressing('run-9999'));
  });
});

describe('SqliteStore finishRun', () => {
  it('writes the end of the run and its deliveries together', () => {
    const store = open();
    store.addRun(progressing('run-1'));
    const end = finished(progressing('run-1'));
    store.finishRun(end, [delivery('d1'), delivery('d2', { receiverUrl: 'http://127.0.0.1:1/b' })]);
    expect(store.getRun('run-1')).toEqual(end);
    expect(store.loadActiveRuns()).toEqual([]);
    expect(store.pendingDeliveries().map((d) => d.id)).toEqual(['d1', 'd2']);
  });

  it('writes nothing when a delivery fails mid-transaction', () => {
    const store = open();
    const before = progressing('run-1');
    store.addRun(before);
    // The second row breaks CHECK (attempts >= 0) after the run and d1 were written.
    expect(() =>
      store.finishRun(finished(before), [delivery('d1'), delivery('d2', { attempts: -1 })]),
    ).toThrow(/CHECK constraint failed/);
    expect(store.getRun('run-1')).toEqual(before);
    expect(store.loadActiveRuns()).toEqual([before]);
    expect(store.listDeliveries()).toEqual([]);
    // The transaction was rolled back, not left open: the next one works.
    store.finishRun(finished(before), [delivery('d1')]);
    expect(store.listDeliveries().map((d) => d.id)).toEqual(['d1']);
  });

  it('writes nothing when a value cannot be bound mid-transaction', () => {
    const store = open();
    store.addRun(record('run-1'));
    const broken = { ...delivery('d2'), receiverUrl: undefined } as unknown as Delivery;
    expect(() => store.finishRun(finished(record('run-1')), [delivery('d1'), broken])).toThrow();
    expect(store.getRun('run-1')?.finishedAt).toBeNull();
    expect(store.listDeliveries()).toEqual([]);
  });
});

describe('SqliteStore deliveries', () => {
  it('lists deliveries by state, pending ones in the order they fall due', () => {
    const store = open();
    store.finishRun(finished(record('run-1')), [
      delivery('late', { nextAttemptAt: 9_000 }),
      delivery('soon', { nextAttemptAt: 1_000 }),
      delivery('done', { createdAt: 1 }),
    ]);
    const done = store.getDelivery('done')!;
    store.saveDelivery({ ...done, state: 'delivered', attempts: 1, updatedAt: 6_000 });
    store.saveDelivery(
      delivery('dead', { state: 'dead_lettered', attempts: 5, lastError: 'HTTP 400' }),
    );

    expect(store.pendingDeliveries().map((d) => d.id)).toEqual(['soon', 'late']);
    expect(store.listDeliveries('pending')).toEqual(store.pendingDeliveries());
    expect(store.listDeliveries('delivered')).toEqual([
      delivery('done', { createdAt: 1, state: 'delivered', attempts: 1, updatedAt: 6_000 }),
    ]);
    expect(store.listDeliveries('dead_lettered')).toEqual([
      delivery('dead', { state: 'dead_lettered', attempts: 5, lastError: 'HTTP 400' }),
    ]);
    expect(store.listDeliveries('disabled')).toEqual([]);
    expect(store.listDeliveries().map((d) => d.id)).toEqual(['done', 'late', 'soon', 'dead']);
    expect(store.getDelivery('nope')).toBeUndefined();
  });

  it('remembers disabled receivers', () => {
    const store = open();
    expect(store.disabledReceivers()).toEqual(new Set());
    store.disableReceiver('http://127.0.0.1:1/a', 1_000);
    store.disableReceiver('http://127.0.0.1:1/a', 2_000);
    store.disableReceiver('http://127.0.0.1:1/b', 3_000);
    expect(store.disabledReceivers()).toEqual(
      new Set(['http://127.0.0.1:1/a', 'http://127.0.0.1:1/b']),
    );
  });
});

describe('SqliteStore restart', () => {
  it('keeps everything across close and reopen', () => {
    const first = SqliteStore.open(dir);
    first.addRun(progressing('run-1'));
    first.addRun(record('run-2'));
    first.finishRun(finished(record('run-2')), [delivery('d1', { runId: 'run-2' })]);
    first.disableReceiver('http://127.0.0.1:1/gone', 1);
    first.close();

    const second = open();
    expect(second.loadActiveRuns()).toEqual([progressing('run-1')]);
    expect(second.getRun('run-2')?.outcome).toBe('run.succeeded');
    expect(second.pendingDeliveries()).toEqual([delivery('d1', { runId: 'run-2' })]);
    expect(second.disabledReceivers()).toEqual(new Set(['http://127.0.0.1:1/gone']));
  });

  it('opens the database file in WAL mode', () => {
    const store = SqliteStore.open(dir);
    store.addRun(record('run-1'));
    store.close(); // the lock is exclusive: nobody else reads the file while a store has it
    const db = new DatabaseSync(join(dir, DB_FILE));
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
  });

  it('keeps a :memory: store off the disk', () => {
    const store = open(':memory:');
    store.addRun(record('run-1'));
    expect(store.getRun('run-1')).toEqual(record('run-1'));
    expect(existsSync(':memory:')).toBe(false);
  });
});

describe('SqliteStore corrupt rows', () => {
  function corrupt(sql: string): void {
    const db = new DatabaseSync(join(dir, DB_FILE));
    db.exec(sql);
    db.close();
  }

  it('names the run whose row cannot be read', () => {
    const seed = SqliteStore.open(dir);
    seed.addRun(record('run-bad'));
    seed.close();
    corrupt(`UPDATE runs SET snapshot = '{"id": "x", "stat' WHERE run_id = 'run-bad'`);
    const store = open();
    expect(() => store.getRun('run-bad')).toThrow(StoreCorruptError);
    expect(() => store.loadActiveRuns()).toThrow(/corrupt row in runs \(id run-bad\)/);
  });

  it('refuses half a progress point', () => {
    const seed = SqliteStore.open(dir);
    seed.addRun(progressing('run-half'));
    seed.close();
    corrupt(`UPDATE runs SET progress_last_done = NULL`);
    expect(() => open().getRun('run-half')).toThrow(/run-half.*progress_last/s);
  });

  it('names the delivery whose row cannot be read', () => {
    const seed = SqliteStore.open(dir);
    seed.saveDelivery(delivery('d-bad'));
    seed.close();
    corrupt(`UPDATE deliveries SET state = 'lost'`);
    const error = (() => {
      try {
        open().getDelivery('d-bad');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(StoreCorruptError);
    expect(error).toMatchObject({ code: 'STORE_CORRUPT', table: 'deliveries', rowId: 'd-bad' });
  });
});

describe('SqliteStore schema', () => {
  /** The v1 schema as it shipped, written out here so a later edit to MIGRATIONS[0] shows. */
  const V1 = `
    CREATE TABLE runs (
      run_id TEXT PRIMARY KEY NOT NULL, added_at INTEGER NOT NULL, status TEXT, snapshot TEXT,
      next_due_at INTEGER NOT NULL,
      unchanged_polls INTEGER NOT NULL CHECK (unchanged_polls >= 0),
      not_found_count INTEGER NOT NULL CHECK (not_found_count >= 0),
      progress_start_at INTEGER, progress_start_done INTEGER,
      progress_last_at INTEGER, progress_last_done INTEGER,
      finished_at INTEGER, outcome TEXT
    );
    CREATE TABLE deliveries (
      id TEXT PRIMARY KEY NOT NULL, message_id TEXT NOT NULL, run_id TEXT NOT NULL,
      type TEXT NOT NULL, receiver_url TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
      attempts INTEGER NOT NULL CHECK (attempts >= 0), next_attempt_at INTEGER NOT NULL,
      last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
    );
    PRAGMA user_version = 1;
  `;

  function writeV1File(): void {
    const db = new DatabaseSync(join(dir, DB_FILE));
    db.exec(V1);
    db.exec(`
      INSERT INTO runs VALUES ('run-1', 1000, 'PROCESSING', '{"id":"run-1","status":"PROCESSING"}',
        2000, 0, 0, 1500, 3, 1900, 40, NULL, NULL);
      INSERT INTO deliveries VALUES ('d1', 'msg_d1', 'run-0', 'run.failed', 'http://127.0.0.1:1/a',
        '{}', 'pending', 2, 7000, 'HTTP 503', 5000, 6000);
    `);
    db.close();
  }

  it('migrates a version 1 file to the current version, keeping its rows', () => {
    writeV1File();
    const store = open();
    expect(store.loadActiveRuns()).toEqual([
      record('run-1', {
        status: 'PROCESSING',
        snapshot: { id: 'run-1', status: 'PROCESSING' },
        // v1 has no look times: a change counts as seen when it happened.
        progress: {
          start: { at: 1_500, done: 3, after: 1_500 },
          last: { at: 1_900, done: 40, after: 1_900 },
          change: null,
          batched: false,
        },
      }),
    ]);
    expect(store.pendingDeliveries()).toEqual([
      delivery('d1', {
        runId: 'run-0',
        type: 'run.failed',
        receiverUrl: 'http://127.0.0.1:1/a',
        body: '{}',
        attempts: 2,
        nextAttemptAt: 7_000,
        lastError: 'HTTP 503',
        updatedAt: 6_000,
      }),
    ]);
    store.disableReceiver('http://127.0.0.1:1/a', 1); // a table v1 lacked
    store.close();

    const db = new DatabaseSync(join(dir, DB_FILE));
    expect(userVersion(db)).toBe(SCHEMA_VERSION);
    const indexes = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'`)
      .all()
      .map((row) => row['name']);
    expect(indexes.sort()).toEqual([
      'deliveries_by_run',
      'deliveries_by_state',
      'runs_active',
      'runs_newest',
    ]);
    db.close();
  });

  it('reads pending deliveries and active runs through their indexes', () => {
    open().close();
    const db = new DatabaseSync(join(dir, DB_FILE));
    const plan = (sql: string) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((row) => String(row['detail']))
        .join('\n');
    expect(
      plan(`SELECT * FROM deliveries WHERE state = 'pending' ORDER BY next_attempt_at, rowid`),
    ).toMatch(/USING INDEX deliveries_by_state/);
    expect(plan('SELECT * FROM runs WHERE finished_at IS NULL ORDER BY added_at, rowid')).toMatch(
      /USING INDEX runs_active/,
    );
    db.close();
  });

  it('leaves the file at its old version when a step fails', () => {
    const db = new DatabaseSync(':memory:');
    expect(() =>
      migrate(db, [...MIGRATIONS, 'CREATE TABLE ok (x); CREATE TABLE runs (x)']),
    ).toThrow(StoreSchemaError);
    expect(userVersion(db)).toBe(0);
    expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master`).get()).toEqual({ n: 0 });
    expect(migrate(db)).toBe(0);
    expect(migrate(db)).toBe(SCHEMA_VERSION);
    db.close();
  });

  it('refuses a file written by a newer version', () => {
    const db = new DatabaseSync(join(dir, DB_FILE));
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => open()).toThrow(StoreSchemaError);
    // A refused open does not keep the lock: another build can open the file at once.
    const other = new DatabaseSync(join(dir, DB_FILE));
    other.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; COMMIT');
    other.close();
  });
});

describe('SqliteStore lock', () => {
  it('is held while open and released by close', () => {
    const store = SqliteStore.open(dir);
    expect(() => SqliteStore.open(dir)).toThrow(StoreLockedError);
    store.close();
    store.close(); // idempotent
    open().close(); // and the directory can be opened again
  });

  it('refuses a second open of the same directory, however it is spelled', () => {
    const store = open();
    const error = (() => {
      try {
        SqliteStore.open(relative(process.cwd(), dir) + '/');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(StoreLockedError);
    expect(error).toMatchObject({ code: 'STORE_LOCKED' });
    expect((error as Error).message).toContain('in use by another watcher');
    // The refusal did not disturb the holder.
    expect(store.addRun(record('run-1'))).toBe(true);
  });

  it('ignores and removes the pid lock file of earlier releases, whatever pid it names', () => {
    // Our own pid: what a restarted container finds, and what used to look alive.
    writeFileSync(join(dir, 'watcher.lock'), `${process.pid}\n`);
    open();
    expect(existsSync(join(dir, 'watcher.lock'))).toBe(false);
  });

  it('creates a new state directory 0700 and its database 0600 (receiver URLs may hold tokens)', () => {
    const stateDir = join(dir, 'new-state');
    open(stateDir);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(stateDir, DB_FILE)).mode & 0o777).toBe(0o600);
  });

  it('refuses while another live process holds the directory, takes over after a kill -9', async () => {
    // A real second watcher process: Node strips the types of the source; the hook maps the
    // `.js` of its relative imports to `.ts` (what tsc's output would contain).
    const script = `
      import { registerHooks } from 'node:module';
      registerHooks({
        resolve(specifier, context, next) {
          try {
            return next(specifier, context);
          } catch (error) {
            if (!specifier.startsWith('.') || !specifier.endsWith('.js')) throw error;
            return next(specifier.slice(0, -3) + '.ts', context);
          }
        },
      });
      const { SqliteStore } = await import(process.argv[1]);
      const store = SqliteStore.open(process.argv[2]);
      store.finishRun(
        { runId: 'run-child', source: 'env', addedAt: 1, status: 'FAILED', snapshot: null, nextDueAt: 1,
          lastPolledAt: null, unchangedPolls: 0, notFoundCount: 0, notFoundSince: null,
          progress: { start: null, last: null, change: null, batched: false },
          finishedAt: 2, outcome: 'run.failed' },
        [],
      );
      process.stdout.write('ready\\n');
      setInterval(() => {}, 60_000);
    `;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, STORE_SOURCE, dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString('utf8').includes('ready')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}): ${stderr}`)));
    });

    expect(() => SqliteStore.open(dir)).toThrow(expect.objectContaining({ code: 'STORE_LOCKED' }));

    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const store = open();
    expect(store.getRun('run-child')?.outcome).toBe('run.failed');
  });
});

describe('SqliteStore.isHealthy', () => {
  it('is true while open and false once closed', () => {
    const store = SqliteStore.open(':memory:');
    expect(store.isHealthy()).toBe(true);
    store.close();
    expect(store.isHealthy()).toBe(false);
  });
});
