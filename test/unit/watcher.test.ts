import { describe, expect, it, jest } from '@jest/globals';
import { parseRunBody } from '../../src/dataframer/parse-run.js';
import { Run } from '../../src/dataframer/schema.js';
import { createLogger } from '../../src/logging.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Delivery } from '../../src/domain/delivery.js';
import { newRunRecord } from '../../src/domain/run.js';
import { Watcher, type WatcherOptions, type ConfigSource } from '../../src/watch/watcher.js';
import { createLogSink } from '../helpers/log-sink.js';
import { runBody } from '../helpers/run-body.js';
import { useFakeClock } from '../helpers/fake-clock.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';
const D = '44444444-4444-4444-8444-444444444444';

/** Runs as WATCH_RUN_IDS lists them. */
const envRuns = (ids: string[]) => new Map(ids.map((id) => [id, 'env' as const]));
/** A run no longer watched: kept in the store as stopped (no outcome), never loaded as active. */
function expectStopped(store: MemoryStore, runId: string): void {
  expect(store.getRun(runId)).toMatchObject({ finishedAt: expect.any(Number), outcome: null });
  expect(store.loadActiveRuns().map((r) => r.runId)).not.toContain(runId);
}

/** Runs as the merged config lists them: WATCH_RUN_IDS and the config file's `watchRunIds`. */
const configRuns = (runs: Record<string, ConfigSource>) => new Map(Object.entries(runs));

useFakeClock(1_000_000);

/** A Watcher on a MemoryStore with a scripted fetcher; `status[id]` is what the API says now. */
function setup(store = new MemoryStore(), extra: Partial<WatcherOptions> = {}) {
  const status: Record<string, string> = {};
  /** A raw body to answer with instead, read as the client reads it. */
  const bodies: Record<string, Record<string, unknown>> = {};
  const gates: Record<string, Promise<void>> = {};
  const calls: string[] = [];
  const sink = createLogSink();
  const enqueued: Delivery[] = [];
  const watcher = new Watcher({
    store,
    fetcher: {
      readRun: async (runId) => {
        calls.push(runId);
        await gates[runId];
        const body = bodies[runId];
        if (body) return parseRunBody(JSON.stringify({ ...body, id: runId }), runId);
        return {
          run: Run.parse(runBody({ id: runId, status: status[runId] ?? 'PROCESSING' })),
          invalidFields: [],
        };
      },
    },
    deliveries: { enqueue: (d) => enqueued.push(...d) },
    receiverUrls: ['http://127.0.0.1:1/hook'],
    logger: createLogger({ level: 'info', format: 'json', secrets: [], destination: sink.stream }),
    timing: { minMs: 1_000, maxMs: 5_000 },
    pollCron: '* * * * * *',
    concurrency: 4,
    ratePerSecond: 100,
    notFoundAfterMs: 60_000,
    maxWatchMs: 60_000,
    random: () => 0,
    ...extra,
  });
  return { watcher, store, status, bodies, gates, calls, sink, enqueued };
}

describe('Watcher', () => {
  it('keeps polling within the max interval after the wall clock steps back an hour', async () => {
    const { watcher, calls } = setup();
    watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    jest.setSystemTime(Date.now() - 3_600_000);
    await jest.advanceTimersByTimeAsync(5_000 + 2_000); // the max interval, and two ticks
    expect(calls.length).toBeGreaterThan(1);
    await watcher.stop();
  });

  it('writes the end and its deliveries before it logs run.finished, then stops polling', async () => {
    const store = new MemoryStore();
    const linesAtFinish: number[] = [];
    const { watcher, status, sink, enqueued, calls } = setup(
      Object.assign(store, {
        finishRun: (...args: Parameters<MemoryStore['finishRun']>) => {
          linesAtFinish.push(sink.byEvent('run.finished').length);
          MemoryStore.prototype.finishRun.apply(store, args);
        },
      }),
    );
    status[A] = 'SUCCEEDED';
    watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(10);
    expect(linesAtFinish).toEqual([0]);
    expect(sink.byEvent('run.finished')).toHaveLength(1);
    expect(store.getRun(A)).toMatchObject({ outcome: 'run.succeeded' });
    expect(enqueued.map((d) => d.messageId)).toEqual([`msg_${A.replaceAll('-', '')}_succeeded`]);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(calls).toEqual([A]);
    await watcher.stop();
  });

  it('does not poll a run the store already knows as finished', async () => {
    const { watcher, store, status, calls } = setup();
    status[A] = 'FAILED';
    watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(10);
    await watcher.stop();
    const again = setup(store);
    again.watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([A]);
    expect(again.calls).toEqual([]);
    expect(again.watcher.outcomes.get(A)).toBe('run.failed');
    await again.watcher.stop();
  });

  it('reconciles the list: adds new runs, removes dropped ones, forgets their outcomes', async () => {
    const { watcher, status, sink } = setup();
    status[B] = 'CANCELED';
    watcher.start(envRuns([A, B]));
    await jest.advanceTimersByTimeAsync(10);
    expect(watcher.outcomes.has(B)).toBe(true);
    expect(watcher.reconcile(envRuns([]))).toEqual({ added: 0, removed: 1 });
    expect(watcher.activeCount).toBe(0);
    expect(watcher.outcomes.size).toBe(0);
    expect(sink.byEvent('run.removed').map((l) => l.run_id)).toEqual([A]);
    await watcher.stop();
  });

  it('drops the answer of a poll that was in flight when its run was removed', async () => {
    const { watcher, store, status, gates, enqueued } = setup();
    let release: () => void = () => {};
    gates[A] = new Promise((resolve) => (release = resolve));
    status[A] = 'SUCCEEDED';
    watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(10);
    watcher.removeRun(A);
    release();
    await jest.advanceTimersByTimeAsync(10);
    expect(enqueued).toEqual([]);
    expectStopped(store, A);
    await watcher.stop();
  });

  it('ends a run watched for longer than maxWatchMs as run.watch_timeout', async () => {
    const { watcher, sink, enqueued } = setup();
    watcher.start(envRuns([A]));
    await jest.advanceTimersByTimeAsync(61_000);
    expect(sink.byEvent('run.watch_timeout')).toHaveLength(1);
    expect(enqueued.map((d) => d.type)).toEqual(['run.watch_timeout']);
    expect(watcher.activeCount).toBe(0);
    await watcher.stop();
  });
});

describe('Watcher and what a body may hold', () => {
  const manyFiles = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `f${i}`, path: `out/${i}.csv`, extra: 'x' }));

  it('warns of an off-spec field once per run, not on every poll, and still finishes the run', async () => {
    const { watcher, bodies, sink, enqueued } = setup();
    bodies[A] = runBody({ status: 'PROCESSING', total_cost: '0.5' });
    bodies[B] = runBody({ status: 'PROCESSING', total_cost: '0.5' });
    watcher.start(envRuns([A, B]));
    await jest.advanceTimersByTimeAsync(20_000);
    bodies[A] = runBody({ status: 'SUCCEEDED', total_cost: '1.37', spec_version: null });
    await jest.advanceTimersByTimeAsync(20_000);
    const warned = sink.byEvent('run.field_invalid').map((l) => [l.run_id, l['field']]);
    expect(warned).toEqual([
      [A, 'total_cost'],
      [B, 'total_cost'],
      [A, 'spec_version'],
    ]);
    expect(sink.byEvent('run.finished').map((l) => [l.run_id, l['total_cost']])).toEqual([
      [A, null],
    ]);
    const data = (JSON.parse(enqueued[0]!.body) as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({ status: 'SUCCEEDED', total_cost: null, spec_version: null });
    await watcher.stop();
  });

  it('keeps at most 1,000 files of a run in the store, after the webhook counted them all', async () => {
    const { watcher, store, bodies, enqueued } = setup();
    bodies[A] = runBody({ status: 'PROCESSING', generated_files: manyFiles(200_000) });
    bodies[B] = runBody({ status: 'SUCCEEDED', generated_files: manyFiles(200_000) });
    watcher.start(envRuns([A, B]));
    await jest.advanceTimersByTimeAsync(10);
    expect(store.getRun(A)?.snapshot?.generated_files).toHaveLength(1_000);
    expect(store.getRun(B)?.snapshot?.generated_files).toHaveLength(1_000);
    const data = (JSON.parse(enqueued[0]!.body) as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({ generated_files_total: 200_000, generated_files_truncated: true });
    expect(data['generated_files']).toHaveLength(1_000);
    // Each file with the spec's fields only.
    expect((data['generated_files'] as unknown[])[0]).toEqual({ id: 'f0', path: 'out/0.csv' });
    expect(enqueued[0]!.body.length).toBeLessThan(100_000);
    await watcher.stop();
  });
});

describe('Watcher and where runs come from', () => {
  it('adds the new list before it removes: a removal never finds the watcher empty in between', () => {
    const seen: number[] = [];
    const { watcher } = setup(new MemoryStore(), {
      onRunsChanged: () => seen.push(watcher.activeCount),
    });
    watcher.start(configRuns({ [A]: 'file' }));
    // A config that swaps run A for run B: with EXIT_WHEN_DONE, an empty moment would end it.
    expect(watcher.reconcile(configRuns({ [B]: 'file' }))).toEqual({ added: 1, removed: 1 });
    expect(seen).toEqual([1]);
  });

  it('drops a run the file no longer lists on a reload, keeping the env runs it still carries', async () => {
    const { watcher, store, sink } = setup();
    watcher.start(configRuns({ [A]: 'env', [B]: 'file' }));
    await jest.advanceTimersByTimeAsync(10);
    // A reload re-reads the same env: the env's runs are in every run list it applies.
    expect(watcher.reconcile(configRuns({ [A]: 'env' }))).toEqual({ added: 0, removed: 1 });
    expect(watcher.activeRun(A)?.source).toBe('env');
    expect(watcher.activeRun(B)).toBeUndefined();
    expectStopped(store, B);
    expect([...watcher.listedRunIds]).toEqual([A]);
    expect(sink.byEvent('run.removed').map((l) => l.run_id)).toEqual([B]);
    await watcher.stop();
  });

  it('never removes a run added through the API or by discovery on a reload', async () => {
    const { watcher, store, calls } = setup();
    watcher.start(configRuns({ [A]: 'file' }));
    expect(watcher.addRun(C, 'api')).toBe('added');
    expect(watcher.addRun(D, 'discovery')).toBe('added');
    expect(watcher.reconcile(configRuns({}))).toEqual({ added: 0, removed: 1 });
    expect(watcher.activeCount).toBe(2);
    expect(watcher.activeRun(C)?.source).toBe('api');
    expect(watcher.activeRun(D)?.source).toBe('discovery');
    expect(store.getRun(C)?.source).toBe('api');
    expect(store.getRun(D)?.source).toBe('discovery');
    // Still polled, too.
    await jest.advanceTimersByTimeAsync(10);
    expect(calls.sort()).toEqual([C, D]);
    await watcher.stop();
  });

  it('takes a run moved from the file to the env for an env run, in the store too', async () => {
    const { watcher, store, sink } = setup();
    watcher.start(configRuns({ [A]: 'file', [B]: 'file' }));
    expect(watcher.reconcile(configRuns({ [A]: 'env', [B]: 'file' }))).toEqual({
      added: 0,
      removed: 0,
    });
    expect(watcher.activeRun(A)?.source).toBe('env');
    expect(store.getRun(A)?.source).toBe('env');
    expect(store.getRun(B)?.source).toBe('file');
    // Neither removed nor added again: the same run, watched on.
    expect(sink.byEvent('run.removed')).toEqual([]);
    expect(sink.byEvent('run.added').map((l) => [l.run_id, l['source']])).toEqual([
      [A, 'file'],
      [B, 'file'],
    ]);
    await watcher.stop();
  });

  it('takes the source the config gives a stored run after a restart', async () => {
    const { watcher, store } = setup();
    watcher.start(configRuns({ [A]: 'file' }));
    await jest.advanceTimersByTimeAsync(10);
    await watcher.stop();
    expect(store.getRun(A)?.source).toBe('file');
    const again = setup(store);
    again.watcher.start(configRuns({ [A]: 'env' }));
    expect(again.watcher.activeRun(A)?.source).toBe('env');
    expect(store.getRun(A)?.source).toBe('env');
    expect(store.loadActiveRuns().map((r) => [r.runId, r.source])).toEqual([[A, 'env']]);
    await again.watcher.stop();
  });

  it('answers addRun with added, already_watched or already_finished', async () => {
    const { watcher, store, status, calls } = setup();
    status[B] = 'SUCCEEDED';
    watcher.start(envRuns([A]));
    expect(watcher.addRun(A, 'api')).toBe('already_watched');
    expect(watcher.activeRun(A)?.source).toBe('env'); // the first source stays
    expect(watcher.addRun(B, 'api')).toBe('added');
    expect(watcher.addRun(B, 'discovery')).toBe('already_watched');
    await jest.advanceTimersByTimeAsync(10);
    expect(store.getRun(B)).toMatchObject({ outcome: 'run.succeeded', source: 'api' });
    expect(watcher.addRun(B, 'api')).toBe('already_finished');
    expect(watcher.addRun(B, 'discovery')).toBe('already_finished');
    expect(watcher.activeRun(B)).toBeUndefined();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls.filter((id) => id === B)).toEqual([B]);
    await watcher.stop();
  });

  it('answers already_finished for a run the store knew as finished before the start', async () => {
    const store = new MemoryStore();
    store.addRun({
      ...newRunRecord(C, 500_000, 500_000, 'discovery'),
      status: 'FAILED',
      finishedAt: 600_000,
      outcome: 'run.failed',
    });
    const { watcher, calls } = setup(store);
    watcher.start(envRuns([]));
    expect(watcher.addRun(C, 'api')).toBe('already_finished');
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([]);
    expect(watcher.activeCount).toBe(0);
    expect(store.getRun(C)?.source).toBe('discovery');
    await watcher.stop();
  });

  it('watches a removed run again when it is added again, by its new source', () => {
    const { watcher, store } = setup();
    watcher.start(configRuns({}));
    watcher.addRun(C, 'discovery');
    watcher.removeRun(C);
    expect(watcher.addRun(C, 'api')).toBe('added');
    expect(watcher.activeRun(C)).toMatchObject({ source: 'api', finishedAt: null });
    expect(store.loadActiveRuns().map((r) => r.runId)).toEqual([C]);
  });

  it('answers removeRun with false for a run it does not watch', async () => {
    const { watcher, store, status, sink } = setup();
    status[B] = 'CANCELED';
    watcher.start(envRuns([B]));
    expect(watcher.removeRun(A)).toBe(false);
    watcher.addRun(C, 'api');
    expect(watcher.removeRun(C)).toBe(true);
    expectStopped(store, C);
    expect(watcher.removeRun(C)).toBe(false);
    await jest.advanceTimersByTimeAsync(10);
    // A finished run is no longer watched either, and stays in the store.
    expect(watcher.removeRun(B)).toBe(false);
    expect(store.getRun(B)?.outcome).toBe('run.canceled');
    expect(sink.byEvent('run.removed').map((l) => l.run_id)).toEqual([C]);
    await watcher.stop();
  });

  it('keeps outcomes of the runs the config lists only, not of API or discovery runs', async () => {
    const { watcher, status, enqueued } = setup();
    status[A] = 'SUCCEEDED';
    status[C] = 'FAILED';
    status[D] = 'CANCELED';
    watcher.start(envRuns([A]));
    watcher.addRun(C, 'api');
    watcher.addRun(D, 'discovery');
    await jest.advanceTimersByTimeAsync(10);
    // All three finished and are notified of...
    expect(enqueued.map((d) => d.runId).sort()).toEqual([A, C, D].sort());
    // ...but the exit code speaks of the configured one alone.
    expect([...watcher.outcomes]).toEqual([[A, 'run.succeeded']]);
    // Once finished, a run the config then lists counts: its outcome is read from the store.
    watcher.reconcile(configRuns({ [A]: 'env', [C]: 'file' }));
    expect(new Map(watcher.outcomes)).toEqual(
      new Map([
        [A, 'run.succeeded'],
        [C, 'run.failed'],
      ]),
    );
    await watcher.stop();
  });
});
