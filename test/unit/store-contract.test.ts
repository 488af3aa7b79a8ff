import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newRunRecord, RUN_SOURCES, type RunRecord } from '../../src/domain/run.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { RunQuery, Store } from '../../src/store/store.js';
import { newDelivery } from '../helpers/delivery.js';

// What every Store must answer alike (src/store/store.ts): the run API and the CLI page through
// runs and read their deliveries the same way whichever store the watcher was started with.

const HOOK = 'http://127.0.0.1:1/hook';
const OTHER_HOOK = 'http://127.0.0.1:1/other';

const dirs: string[] = [];
afterEach(() => {
  dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

/** Each store the watcher can run on: one contract, the same tests. */
const stores: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['SqliteStore in memory', () => SqliteStore.open(':memory:')],
  [
    'SqliteStore in a file',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'store-contract-'));
      dirs.push(dir);
      return SqliteStore.open(dir);
    },
  ],
];

/** A run added at `addedAt`, not yet polled. */
const run = (runId: string, addedAt: number): RunRecord =>
  newRunRecord(runId, addedAt, addedAt + 1_000);

/** The same run as it ended, with the status it ended in. */
const finished = (record: RunRecord, status = 'SUCCEEDED', at = record.addedAt + 500) => ({
  ...record,
  status,
  finishedAt: at,
  outcome: status === 'SUCCEEDED' ? ('run.succeeded' as const) : ('run.failed' as const),
});

/** The runs' IDs in the order the store lists them. */
const ids = (records: readonly RunRecord[]) => records.map((r) => r.runId);

describe.each(stores)('Store contract: %s', (_name, openStore) => {
  let store: Store;
  beforeEach(() => {
    store = openStore();
  });
  afterEach(() => {
    store.close();
  });

  /** Every page of `query` from the first, `after` the last run of the page before. */
  function allPages(query: RunQuery): string[][] {
    const pages: string[][] = [];
    let after: RunQuery['after'];
    for (;;) {
      const page = store.listRuns({ ...query, ...(after ? { after } : {}) });
      pages.push(ids(page));
      const last = page.at(-1);
      if (!last) return pages;
      after = { addedAt: last.addedAt, runId: last.runId };
      if (pages.length > 20) throw new Error('paging does not end');
    }
  }

  describe('listRuns', () => {
    it('lists runs newest first by addedAt, whatever order they were added in', () => {
      for (const [id, at] of [
        ['run-c', 2_000],
        ['run-a', 3_000],
        ['run-d', 1_000],
        ['run-b', 4_000],
      ] as const)
        store.addRun(run(id, at));
      expect(ids(store.listRuns({ limit: 10 }))).toEqual(['run-b', 'run-a', 'run-c', 'run-d']);
    });

    it('breaks ties of addedAt by runId, descending', () => {
      // Added in neither order: neither insertion order nor run ID alone gives the answer.
      for (const [id, at] of [
        ['run-b', 2_000],
        ['run-f', 1_000],
        ['run-e', 3_000],
        ['run-a', 2_000],
        ['run-c', 2_000],
        ['run-d', 3_000],
      ] as const)
        store.addRun(run(id, at));
      expect(ids(store.listRuns({ limit: 10 }))).toEqual([
        'run-e',
        'run-d',
        'run-c',
        'run-b',
        'run-a',
        'run-f',
      ]);
    });

    it('returns the records as they were saved', () => {
      const record = { ...run('run-a', 1_000), status: 'PROCESSING', unchangedPolls: 3 };
      store.addRun(record);
      expect(store.listRuns({ limit: 1 })).toEqual([record]);
    });

    it.each([
      [1, ['run-d']],
      [3, ['run-d', 'run-c', 'run-b']],
      [4, ['run-d', 'run-c', 'run-b', 'run-a']],
      [100, ['run-d', 'run-c', 'run-b', 'run-a']],
      [0, []],
    ])('returns at most limit=%i runs, the newest', (limit, expected) => {
      ['run-a', 'run-b', 'run-c', 'run-d'].forEach((id, i) => store.addRun(run(id, 1_000 * i)));
      expect(ids(store.listRuns({ limit }))).toEqual(expected);
    });

    it('lists nothing in an empty store', () => {
      expect(store.listRuns({ limit: 10 })).toEqual([]);
      expect(store.listRuns({ limit: 10, after: { addedAt: 5, runId: 'x' } })).toEqual([]);
    });

    describe('pages', () => {
      // Ties of addedAt on both sides of page boundaries, for pages of 2 and of 3.
      const added: [string, number][] = [
        ['run-a', 1_000],
        ['run-b', 2_000],
        ['run-c', 2_000],
        ['run-d', 2_000],
        ['run-e', 3_000],
        ['run-f', 4_000],
        ['run-g', 4_000],
        ['run-h', 4_000],
      ];
      const newestFirst = ['run-h', 'run-g', 'run-f', 'run-e', 'run-d', 'run-c', 'run-b', 'run-a'];
      beforeEach(() => {
        for (const [id, at] of added) store.addRun(run(id, at));
      });

      it.each([2, 3])('of %i visit every run once, in order', (size) => {
        const pages = allPages({ limit: size });
        expect(pages.flat()).toEqual(newestFirst);
        // Full pages, then the rest, then an empty page.
        expect(pages.map((p) => p.length)).toEqual(size === 2 ? [2, 2, 2, 2, 0] : [3, 3, 2, 0]);
      });

      it('start after the cursor, not at it, also when the cursor ties with the next run', () => {
        expect(
          ids(store.listRuns({ limit: 10, after: { addedAt: 4_000, runId: 'run-g' } })),
        ).toEqual(['run-f', 'run-e', 'run-d', 'run-c', 'run-b', 'run-a']);
        expect(
          ids(store.listRuns({ limit: 2, after: { addedAt: 2_000, runId: 'run-c' } })),
        ).toEqual(['run-b', 'run-a']);
      });

      it('go on from a cursor whose run was pruned in between', () => {
        const first = store.listRuns({ limit: 3 });
        store.saveRun({ ...store.getRun('run-f')!, finishedAt: 1, outcome: 'run.succeeded' });
        expect(store.prune(2, new Set()).runs).toBe(1);
        const last = first.at(-1)!;
        expect(
          ids(store.listRuns({ limit: 3, after: { addedAt: last.addedAt, runId: last.runId } })),
        ).toEqual(['run-e', 'run-d', 'run-c']);
      });

      it('take a cursor between runs, by value', () => {
        expect(ids(store.listRuns({ limit: 10, after: { addedAt: 2_500, runId: 'zzz' } }))).toEqual(
          ['run-d', 'run-c', 'run-b', 'run-a'],
        );
        expect(
          ids(store.listRuns({ limit: 10, after: { addedAt: 2_000, runId: 'run-bb' } })),
        ).toEqual(['run-b', 'run-a']);
        expect(store.listRuns({ limit: 10, after: { addedAt: 1_000, runId: 'run-a' } })).toEqual(
          [],
        );
      });
    });

    describe('filters', () => {
      // Newest first: h g f e d c b a; finished are g (SUCCEEDED), e (FAILED), c (SUCCEEDED),
      // b (SUCCEEDED, via finishRun); the others active, some polled (PROCESSING), some not.
      beforeEach(() => {
        const at: Record<string, number> = {
          'run-a': 1_000,
          'run-b': 2_000,
          'run-c': 2_000,
          'run-d': 2_000,
          'run-e': 3_000,
          'run-f': 4_000,
          'run-g': 4_000,
          'run-h': 4_000,
        };
        for (const [id, addedAt] of Object.entries(at)) store.addRun(run(id, addedAt));
        store.saveRun({ ...run('run-a', 1_000), status: 'PROCESSING' });
        store.saveRun({ ...run('run-d', 2_000), status: 'PENDING' });
        store.saveRun({ ...run('run-h', 4_000), status: 'PROCESSING' });
        store.saveRun(finished(run('run-g', 4_000)));
        store.saveRun(finished(run('run-e', 3_000), 'FAILED'));
        store.saveRun(finished(run('run-c', 2_000)));
        store.finishRun(finished(run('run-b', 2_000)), [
          newDelivery('b1', HOOK, { runId: 'run-b' }),
        ]);
      });

      it('by state: active runs have no finishedAt, finished runs have one', () => {
        const active = store.listRuns({ limit: 10, state: 'active' });
        const done = store.listRuns({ limit: 10, state: 'finished' });
        expect(ids(active)).toEqual(['run-h', 'run-f', 'run-d', 'run-a']);
        expect(ids(done)).toEqual(['run-g', 'run-e', 'run-c', 'run-b']);
        expect(active.every((r) => r.finishedAt === null)).toBe(true);
        expect(done.every((r) => r.finishedAt !== null)).toBe(true);
      });

      it('by the last status seen', () => {
        expect(ids(store.listRuns({ limit: 10, status: 'SUCCEEDED' }))).toEqual([
          'run-g',
          'run-c',
          'run-b',
        ]);
        expect(ids(store.listRuns({ limit: 10, status: 'PROCESSING' }))).toEqual([
          'run-h',
          'run-a',
        ]);
        expect(ids(store.listRuns({ limit: 10, status: 'FAILED' }))).toEqual(['run-e']);
        expect(store.listRuns({ limit: 10, status: 'CANCELED' })).toEqual([]);
      });

      it('by state and status together', () => {
        expect(ids(store.listRuns({ limit: 10, state: 'active', status: 'PROCESSING' }))).toEqual([
          'run-h',
          'run-a',
        ]);
        expect(ids(store.listRuns({ limit: 10, state: 'finished', status: 'FAILED' }))).toEqual([
          'run-e',
        ]);
        expect(store.listRuns({ limit: 10, state: 'active', status: 'SUCCEEDED' })).toEqual([]);
      });

      it('limit the matching runs, not the runs before filtering', () => {
        expect(ids(store.listRuns({ limit: 2, state: 'finished' }))).toEqual(['run-g', 'run-e']);
        expect(ids(store.listRuns({ limit: 1, status: 'PROCESSING' }))).toEqual(['run-h']);
      });

      it.each<[string, Omit<RunQuery, 'limit'>, string[]]>([
        ['state active', { state: 'active' }, ['run-h', 'run-f', 'run-d', 'run-a']],
        ['state finished', { state: 'finished' }, ['run-g', 'run-e', 'run-c', 'run-b']],
        ['status SUCCEEDED', { status: 'SUCCEEDED' }, ['run-g', 'run-c', 'run-b']],
        ['active and PROCESSING', { state: 'active', status: 'PROCESSING' }, ['run-h', 'run-a']],
      ])('page through %s, in pages of 2 and 3', (_filter, filter, expected) => {
        for (const size of [2, 3]) {
          const pages = allPages({ limit: size, ...filter });
          expect(pages.flat()).toEqual(expected);
          expect(pages.slice(0, -1).every((p) => p.length > 0 && p.length <= size)).toBe(true);
          expect(pages.at(-1)).toEqual([]);
        }
      });

      it('apply after the cursor, which need not match them', () => {
        // run-f (active, never polled) as the cursor of a list of finished runs.
        expect(
          ids(
            store.listRuns({
              limit: 10,
              state: 'finished',
              after: { addedAt: 4_000, runId: 'run-f' },
            }),
          ),
        ).toEqual(['run-e', 'run-c', 'run-b']);
        expect(
          ids(
            store.listRuns({
              limit: 10,
              status: 'PROCESSING',
              after: { addedAt: 4_000, runId: 'run-h' },
            }),
          ),
        ).toEqual(['run-a']);
      });
    });
  });

  describe('sources', () => {
    it.each(RUN_SOURCES)('keeps a run added from %s as that source', (source) => {
      const record = newRunRecord('run-a', 1_000, 2_000, source);
      expect(store.addRun(record)).toBe(true);
      expect(store.getRun('run-a')?.source).toBe(source);
      expect(store.listRuns({ limit: 1 })[0]?.source).toBe(source);
      expect(store.loadActiveRuns().map((r) => r.source)).toEqual([source]);
      store.finishRun(finished(record), []);
      expect(store.getRun('run-a')?.source).toBe(source);
    });

    it('saves a change of source (a run moved from the file to the env)', () => {
      const record = newRunRecord('run-a', 1_000, 2_000, 'file');
      store.addRun(record);
      store.saveRun({ ...record, source: 'env' });
      expect(store.getRun('run-a')?.source).toBe('env');
    });

    it('keeps the first source when a run is added again', () => {
      store.addRun(newRunRecord('run-a', 1_000, 2_000, 'discovery'));
      expect(store.addRun(newRunRecord('run-a', 5_000, 6_000, 'api'))).toBe(false);
      expect(store.getRun('run-a')).toMatchObject({ source: 'discovery', addedAt: 1_000 });
    });
  });

  describe('deliveries of runs', () => {
    beforeEach(() => {
      // The runs' deliveries interleaved; a2 and a3 tie on createdAt.
      store.saveDelivery(newDelivery('a1', HOOK, { runId: 'run-a', createdAt: 100 }));
      store.saveDelivery(newDelivery('c1', HOOK, { runId: 'run-c', createdAt: 50 }));
      store.saveDelivery(newDelivery('b1', HOOK, { runId: 'run-b', createdAt: 150 }));
      store.saveDelivery(newDelivery('a2', OTHER_HOOK, { runId: 'run-a', createdAt: 300 }));
      store.saveDelivery(newDelivery('a3', HOOK, { runId: 'run-a', createdAt: 300 }));
    });

    it("deliveriesOf gives one run's deliveries, oldest first, ties in the order saved", () => {
      expect(store.deliveriesOf('run-a').map((d) => d.id)).toEqual(['a1', 'a2', 'a3']);
      expect(store.deliveriesOf('run-b')).toEqual([
        newDelivery('b1', HOOK, { runId: 'run-b', createdAt: 150 }),
      ]);
      expect(store.deliveriesOf('run-x')).toEqual([]);
    });

    it('orders by createdAt, not by when a delivery was first saved', () => {
      store.saveDelivery(newDelivery('d2', HOOK, { runId: 'run-d', createdAt: 900 }));
      store.saveDelivery(newDelivery('d1', HOOK, { runId: 'run-d', createdAt: 800 }));
      expect(store.deliveriesOf('run-d').map((d) => d.id)).toEqual(['d1', 'd2']);
      expect(
        store
          .deliveriesOfRuns(['run-d'])
          .get('run-d')
          ?.map((d) => d.id),
      ).toEqual(['d1', 'd2']);
    });

    it('deliveriesOf shows the latest state of a delivery saved again, in its place', () => {
      store.saveDelivery(
        newDelivery('a1', HOOK, { runId: 'run-a', createdAt: 100, state: 'delivered' }),
      );
      expect(store.deliveriesOf('run-a').map((d) => [d.id, d.state])).toEqual([
        ['a1', 'delivered'],
        ['a2', 'pending'],
        ['a3', 'pending'],
      ]);
    });

    it('deliveriesOfRuns groups by run, leaves out runs without deliveries and unasked runs', () => {
      const byRun = store.deliveriesOfRuns(['run-a', 'run-x', 'run-b']);
      expect([...byRun.keys()].sort()).toEqual(['run-a', 'run-b']);
      expect(byRun.get('run-a')?.map((d) => d.id)).toEqual(['a1', 'a2', 'a3']);
      expect(byRun.get('run-b')?.map((d) => d.id)).toEqual(['b1']);
      expect(byRun.has('run-x')).toBe(false);
      expect(byRun.has('run-c')).toBe(false);
    });

    it('deliveriesOfRuns answers each run as deliveriesOf does', () => {
      const runIds = ['run-a', 'run-b', 'run-c'];
      const byRun = store.deliveriesOfRuns(runIds);
      for (const runId of runIds) expect(byRun.get(runId)).toEqual(store.deliveriesOf(runId));
    });

    it('deliveriesOfRuns of no run is an empty map', () => {
      expect(store.deliveriesOfRuns([]).size).toBe(0);
      expect(store.deliveriesOfRuns(['run-x', 'run-y']).size).toBe(0);
    });

    it('includes the deliveries a finishRun wrote', () => {
      const record = finished(run('run-d', 1_000));
      store.addRun(run('run-d', 1_000));
      store.finishRun(record, [
        newDelivery('d1', HOOK, { runId: 'run-d', createdAt: 400 }),
        newDelivery('d2', OTHER_HOOK, { runId: 'run-d', createdAt: 400 }),
      ]);
      expect(store.deliveriesOf('run-d').map((d) => d.id)).toEqual(['d1', 'd2']);
      expect(
        store
          .deliveriesOfRuns(['run-d', 'run-c'])
          .get('run-d')
          ?.map((d) => d.receiverUrl),
      ).toEqual([HOOK, OTHER_HOOK]);
    });
  });

  describe('meta', () => {
    it('is undefined for a key never set', () => {
      expect(store.getMeta('discover_since')).toBeUndefined();
    });

    it('keeps a value, and the last one set wins', () => {
      store.setMeta('discover_since', '1700000000000');
      store.setMeta('other', 'x');
      expect(store.getMeta('discover_since')).toBe('1700000000000');
      store.setMeta('discover_since', '1800000000000');
      expect(store.getMeta('discover_since')).toBe('1800000000000');
      expect(store.getMeta('other')).toBe('x');
    });

    it('keeps an empty value apart from a missing one', () => {
      store.setMeta('empty', '');
      expect(store.getMeta('empty')).toBe('');
    });
  });
});
