import { describe, expect, it, jest } from '@jest/globals';
import { parseRunBody } from '../../src/dataframer/parse-run.js';
import { Run } from '../../src/dataframer/schema.js';
import { createLogger } from '../../src/logging.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Delivery } from '../../src/domain/delivery.js';
import { Watcher } from '../../src/watch/watcher.js';
import { createLogSink } from '../helpers/log-sink.js';
import { runBody } from '../helpers/run-body.js';
import { useFakeClock } from '../helpers/fake-clock.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

/** Runs as WATCH_RUN_IDS lists them. */
const envRuns = (ids: string[]) => new Map(ids.map((id) => [id, 'env' as const]));

useFakeClock(1_000_000);

/** A Watcher on a MemoryStore with a scripted fetcher; `status[id]` is what the API says now. */
function setup(store = new MemoryStore()) {
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
    expect(store.getRun(A)).toBeUndefined();
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
