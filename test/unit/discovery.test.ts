import { describe, expect, it, jest } from '@jest/globals';
import type { RunList } from '../../src/dataframer/parse-run.js';
import type { Run } from '../../src/dataframer/schema.js';
import { TransientError } from '../../src/dataframer/errors.js';
import { createLogger } from '../../src/logging.js';
import { newRunRecord } from '../../src/domain/run.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { DISCOVER_SINCE_KEY, Discovery, type DiscoveryOptions } from '../../src/watch/discovery.js';
import { useFakeClock } from '../helpers/fake-clock.js';
import { createLogSink } from '../helpers/log-sink.js';

const T0 = Date.parse('2026-12-02T12:00:00Z');
const INTERVAL = 30_000;
useFakeClock(T0);

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const SPEC = '9d1f7c2a-3b4e-4f60-8a71-2c5d9e0b1f34';

function item(n: number, status: string, createdAt: number, extra: Partial<Run> = {}): Run {
  return {
    id: id(n),
    status,
    created_at: new Date(createdAt).toISOString(),
    spec_id: SPEC,
    created_by_email: 'ana@example.com',
    ...extra,
  };
}

/** A watcher that records what discovery asked of it; `watched` are the runs it watches. */
function world(lists: (RunList | Error)[], options: Partial<DiscoveryOptions> = {}) {
  const added: [string, string][] = [];
  const polledSoon: string[] = [];
  const watched = new Set<string>();
  const takes = { count: 0 };
  const store = new MemoryStore();
  const sink = createLogSink();
  let calls = 0;
  const discovery = new Discovery({
    lister: {
      listRuns: () => {
        const next = lists[Math.min(calls++, lists.length - 1)]!;
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      },
    },
    watcher: {
      addRun: (runId, source) => {
        added.push([runId, source]);
        watched.add(runId);
        return 'added';
      },
      activeRun: (runId) => (watched.has(runId) ? ({ runId } as never) : undefined),
      pollSoon: (runId) => void polledSoon.push(runId),
    },
    store,
    limiter: { take: () => Promise.resolve(void takes.count++) },
    intervalMs: INTERVAL,
    catchUpMs: 3 * INTERVAL,
    since: null,
    specIds: [],
    createdBy: [],
    logger: createLogger({ level: 'info', format: 'json', secrets: [], destination: sink.stream }),
    now: Date.now,
    ...options,
  });
  return { discovery, added, polledSoon, watched, takes, store, sink, listCalls: () => calls };
}

const list = (runs: Run[], invalidItems = 0): RunList => ({ runs, invalidItems, bytes: 100 });

describe('Discovery', () => {
  it('watches new unfinished runs created after it began, not older or finished ones', async () => {
    const w = world([
      list([
        item(1, 'PROCESSING', T0 + 1),
        item(2, 'PROCESSING', T0 - 60_000), // created before discovery began
        item(3, 'SUCCEEDED', T0 - 3_600_000, { completed_at: new Date(T0 - 1).toISOString() }),
        item(4, 'PENDING', T0 + 5),
        { id: id(5), status: 'PENDING' }, // no creation time: cannot be told from an old run
      ]),
    ]);
    w.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(w.added).toEqual([
      [id(1), 'discovery'],
      [id(4), 'discovery'],
    ]);
    expect(w.store.getMeta(DISCOVER_SINCE_KEY)).toBe(String(T0));
    expect(w.sink.byEvent('discovery.started')[0]).toMatchObject({ interval_ms: INTERVAL });
    await w.discovery.stop();
  });

  it('keeps when it began across a restart, and DISCOVER_SINCE wins over it', async () => {
    const runs = list([item(1, 'PROCESSING', T0 - 10_000)]);
    const first = world([runs]);
    first.store.setMeta(DISCOVER_SINCE_KEY, String(T0 - 20_000));
    first.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(first.added.map(([runId]) => runId)).toEqual([id(1)]);
    await first.discovery.stop();

    const pinned = world([runs], { since: T0 - 5_000 });
    pinned.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(pinned.added).toEqual([]);
    await pinned.discovery.stop();
  });

  it('takes a run that started and ended between two lists, but not one that ended long ago', async () => {
    const ended = (n: number, at: number) =>
      item(n, 'FAILED', T0 + 1, { completed_at: new Date(at).toISOString() });
    const now = T0 + 5 * INTERVAL; // the sixth list
    const w = world([
      ...Array.from({ length: 5 }, () => list([])),
      list([ended(1, now - 10_000), ended(2, T0 + 2)]),
    ]);
    w.discovery.start();
    for (let i = 0; i < 6; i += 1) await jest.advanceTimersByTimeAsync(i === 0 ? 0 : INTERVAL);
    expect(w.listCalls()).toBe(6);
    // Ended 10 s before the list: between two lists. Ended 5 intervals ago: more than 3.
    expect(w.added.map(([runId]) => runId)).toEqual([id(1)]);
    await w.discovery.stop();
  });

  it('does not take again a run the store knows: finished, or removed through the API', async () => {
    const w = world([list([item(1, 'PROCESSING', T0 + 1), item(2, 'PROCESSING', T0 + 1)])]);
    const stopped = { ...newRunRecord(id(1), T0, T0, 'discovery'), finishedAt: T0 + 1 };
    w.store.addRun(stopped);
    w.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(w.added.map(([runId]) => runId)).toEqual([id(2)]);
    await w.discovery.stop();
  });

  it('applies DISCOVER_SPEC_IDS and DISCOVER_CREATED_BY, case-insensitively', async () => {
    const w = world(
      [
        list([
          item(1, 'PENDING', T0 + 1),
          item(2, 'PENDING', T0 + 1, { spec_id: '11111111-1111-4111-8111-111111111111' }),
          item(3, 'PENDING', T0 + 1, { created_by_email: 'bo@example.com' }),
        ]),
      ],
      { specIds: [SPEC.toUpperCase()], createdBy: ['Ana@Example.com'] },
    );
    w.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(w.added.map(([runId]) => runId)).toEqual([id(1)]);
    await w.discovery.stop();
  });

  it('polls at once a watched run the list shows ended, and leaves a moving one alone', async () => {
    const w = world([list([item(1, 'SUCCEEDED', T0 - 1), item(2, 'PROCESSING', T0 - 1)])]);
    w.watched.add(id(1)).add(id(2));
    w.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(w.polledSoon).toEqual([id(1)]);
    expect(w.added).toEqual([]);
    await w.discovery.stop();
  });

  it('lists every interval, one at a time, each within the shared rate limit', async () => {
    const w = world([list([])]);
    w.discovery.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(w.listCalls()).toBe(1);
    await jest.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(w.listCalls()).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(w.listCalls()).toBe(2);
    expect(w.takes.count).toBe(2);
    await w.discovery.stop();
    await jest.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(w.listCalls()).toBe(2);
  });

  it('logs a failing list once, and once more when it answers again; skipped items when their count changes', async () => {
    const down = new TransientError('GET the run list answered 503', '', 503);
    const w = world([down, down, down, list([], 2), list([], 2), list([], 0)]);
    w.discovery.start();
    for (let i = 0; i < 6; i += 1) await jest.advanceTimersByTimeAsync(i === 0 ? 0 : INTERVAL);
    expect(w.listCalls()).toBe(6);
    expect(w.sink.byEvent('discovery.failed')).toHaveLength(1);
    expect(w.sink.byEvent('discovery.failed')[0]).toMatchObject({ error: { code: 'TRANSIENT' } });
    expect(w.sink.byEvent('discovery.recovered')).toHaveLength(1);
    expect(w.sink.byEvent('discovery.items_invalid').map((l) => l['items'])).toEqual([2]);
    await w.discovery.stop();
  });
});
