import { describe, expect, it } from '@jest/globals';
import {
  RunNotFoundError,
  TransientError,
  UnauthorizedError,
  InvalidResponseError,
  ResponseTooLargeError,
} from '../../src/dataframer/errors.js';
import { parseRunBody } from '../../src/dataframer/parse-run.js';
import { Run } from '../../src/dataframer/schema.js';
import { newRunRecord } from '../../src/domain/run.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { applyPoll, expireRun, type PollContext } from '../../src/watch/run-state.js';
import { exampleRun, runBody } from '../helpers/run-body.js';

const RUN_ID = exampleRun.id;
const ctx = (now: number): PollContext => ({
  now,
  timing: { minMs: 1_000, maxMs: 10_000 },
  notFoundAfterMs: 60_000,
  random: () => 0,
});
const run = (overrides: Record<string, unknown>) => Run.parse(runBody(overrides));
const start = newRunRecord(RUN_ID, 0, 0);
/** A successful poll of a PROCESSING run of 100 samples, `done` of them done. */
const proc = (done: number) => ({
  ok: true as const,
  run: run({
    status: 'PROCESSING',
    samples_completed: done,
    samples_failed: 0,
    runtime_params: { number_of_samples: 100 },
  }),
});

describe('run state machine', () => {
  it('logs a status change and resets the backoff', () => {
    const t = applyPoll(
      start,
      { ok: true, run: run({ status: 'PENDING', samples_completed: 0, samples_failed: 0 }) },
      ctx(1_000),
    );
    expect(t.events.map((e) => e.event)).toEqual(['run.status_changed']);
    expect(t.events[0]?.fields).toMatchObject({ from: null, to: 'PENDING' });
    expect(t).toMatchObject({ finish: null, changed: true, keyAccepted: true });
    const again = applyPoll(
      t.record,
      { ok: true, run: run({ status: 'PENDING', samples_completed: 0, samples_failed: 0 }) },
      ctx(2_000),
    );
    expect(again.events).toEqual([]);
    expect(again.changed).toBe(false);
    expect(again.record.unchangedPolls).toBe(1);
  });

  it('finishes on a terminal status with every field of run.finished', () => {
    const t = applyPoll(
      start,
      {
        ok: true,
        run: run({
          status: 'SUCCEEDED',
          samples_completed: 98,
          samples_failed: 2,
          total_cost: 1.37,
        }),
      },
      ctx(5_000),
    );
    expect(t.finish).toBe('run.succeeded');
    expect(t.record).toMatchObject({ finishedAt: 5_000, outcome: 'run.succeeded' });
    const finished = t.events.find((e) => e.event === 'run.finished');
    expect(finished?.fields).toEqual({
      status: 'SUCCEEDED',
      samples_completed: 98,
      samples_failed: 2,
      number_of_samples: 123,
      total_cost: 1.37,
      generated_files: exampleRun['generated_files'],
      generated_files_total: 1,
      generated_files_truncated: false,
      spec_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
      spec_name: '<string>',
      spec_version: 123,
      dataset_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
      dataset_name: '<string>',
      created_at: '2023-11-07T05:31:56Z',
      completed_at: '2023-11-07T05:31:56Z',
      watch_duration_ms: 5_000,
    });
    // The webhook's data is the same summary: the two cannot say different things of a run.
    const { run_id: runId, ...data } = buildWebhookBody(
      'run.succeeded',
      t.record.runId,
      t.record.snapshot,
      new Date(5_000),
    ).data;
    const { watch_duration_ms: _watched, ...summary } = finished?.fields ?? {};
    expect(runId).toBe(t.record.runId);
    expect(data).toEqual(summary);
  });

  it.each([
    ['FAILED', 'run.failed'],
    ['CANCELED', 'run.canceled'],
  ])('maps %s to %s', (status, type) => {
    expect(applyPoll(start, { ok: true, run: run({ status }) }, ctx(1)).finish).toBe(type);
  });

  it('keeps an unknown status as not finished, with one warning', () => {
    const t = applyPoll(start, { ok: true, run: run({ status: 'IN_PROGRESS' }) }, ctx(1));
    expect(t.finish).toBeNull();
    expect(t.events.map((e) => [e.event, e.level])).toEqual([
      ['run.status_changed', 'info'],
      ['run.unknown_status', 'warn'],
    ]);
    expect(
      applyPoll(t.record, { ok: true, run: run({ status: 'IN_PROGRESS' }) }, ctx(2)).events,
    ).toEqual([]);
  });

  const nf = { ok: false as const, error: new RunNotFoundError('404', RUN_ID, 404) };

  it('ends as not found only once 404s have lasted NOT_FOUND_AFTER_MS, backing off meanwhile', () => {
    // A burst of 404s, however many, does not end the run (ctx: 60 s, min 1 s, max 10 s).
    let record = start;
    const delays: number[] = [];
    for (let at = 1_000; at < 61_000; at = record.nextDueAt) {
      const t = applyPoll(record, nf, ctx(at));
      expect(t.finish).toBeNull();
      // Only the first 404 of the stretch is saved: a restart keeps when the stretch began.
      expect(t.changed).toBe(at === 1_000);
      expect(t.events[0]).toMatchObject({ event: 'poll.failed' });
      delays.push(t.record.nextDueAt - at);
      record = t.record;
    }
    expect(delays.slice(0, 5)).toEqual([1_000, 2_000, 4_000, 8_000, 10_000]);
    expect(record.notFoundSince).toBe(1_000);
    const end = applyPoll(record, nf, ctx(61_000));
    expect(end.finish).toBe('run.not_found');
    expect(end.events[0]).toMatchObject({
      event: 'run.not_found',
      fields: { not_found_for_ms: 60_000, not_found_count: delays.length + 1 },
    });
  });

  it('a run that 404s for a while and then answers is watched to its end', () => {
    let record = start;
    for (const at of [1_000, 2_000, 20_000]) record = applyPoll(record, nf, ctx(at)).record;
    const seen = applyPoll(record, { ok: true, run: run({ status: 'PROCESSING' }) }, ctx(21_000));
    expect(seen.record).toMatchObject({ notFoundCount: 0, notFoundSince: null });
    // A later 404 starts a new stretch: it does not inherit the old one's start.
    const later = applyPoll(seen.record, nf, ctx(70_000));
    expect(later.finish).toBeNull();
    expect(later.record.notFoundSince).toBe(70_000);
    const done = applyPoll(
      later.record,
      { ok: true, run: run({ status: 'SUCCEEDED' }) },
      ctx(80_000),
    );
    expect(done.finish).toBe('run.succeeded');
  });

  it('keeps the run and slows down when the key is refused', () => {
    const t = applyPoll(
      start,
      { ok: false, error: new UnauthorizedError('401', RUN_ID, 401) },
      ctx(100),
    );
    expect(t).toMatchObject({ finish: null, keyRefused: true, events: [] });
    expect(t.record.nextDueAt).toBe(10_100);
  });

  it('logs poll.failed with the offending path and backs off', () => {
    const t = applyPoll(
      start,
      { ok: false, error: new InvalidResponseError('bad', RUN_ID, 'samples_completed') },
      ctx(1),
    );
    expect(t.events[0]).toMatchObject({
      event: 'poll.failed',
      runId: RUN_ID,
      fields: { error: { code: 'INVALID_RESPONSE', path: 'samples_completed' } },
    });
    expect(t.record.unchangedPolls).toBe(1);
    const net = applyPoll(
      start,
      { ok: false, error: new TransientError('x', RUN_ID, null, 'ECONNRESET') },
      ctx(1),
    );
    expect(net.events[0]?.fields).toMatchObject({
      error: { code: 'TRANSIENT', network_code: 'ECONNRESET' },
    });
  });

  it('tracks progress once the run has left PENDING and aims at the predicted end', () => {
    const a = applyPoll(start, proc(0), ctx(0));
    const b = applyPoll(a.record, proc(20), ctx(2_000));
    expect(b.record.progress.start).toEqual({ at: 0, done: 0, after: 0 });
    expect(b.record.progress.last).toEqual({ at: 2_000, done: 20, after: 2_000 });
    expect(b.record.progress.change).toEqual(b.record.progress.last);
    expect(b.record.progress.batched).toBe(false);
    // 80 samples left at 10/s: 8 s, less the rounding of the counts (poll-policy.ts).
    expect(b.record.nextDueAt).toBe(9_700);
  });

  it('learns from a look that finds a moving run unchanged that progress comes in batches', () => {
    const a = applyPoll(start, proc(20), ctx(0));
    const b = applyPoll(a.record, proc(40), ctx(2_000));
    expect(b.record.progress.batched).toBe(false);
    const plateau = applyPoll(b.record, proc(40), ctx(3_000));
    expect(plateau.record.progress.batched).toBe(true);
    expect(plateau.changed).toBe(true); // saved, so a restart keeps it
    expect(applyPoll(plateau.record, proc(40), ctx(3_500)).changed).toBe(false);
    expect(plateau.record.lastPolledAt).toBe(3_000);
    // The step to 60 happened after the plateau look, not at the look that saw it.
    const c = applyPoll(plateau.record, proc(60), ctx(7_000));
    expect(c.record.progress.last).toEqual({ at: 7_000, done: 60, after: 3_000 });
    // The rate is measured from the first change (40 at 2 s), not the first look.
    expect(c.record.progress.change).toEqual({ at: 2_000, done: 40, after: 2_000 });
  });

  it('learns the same from a jump the measured rate cannot explain', () => {
    const a = applyPoll(start, proc(0), ctx(0));
    const b = applyPoll(a.record, proc(20), ctx(2_000)); // 10 a second
    const steady = applyPoll(b.record, proc(40), ctx(4_000));
    expect(steady.record.progress.batched).toBe(false);
    const step = applyPoll(steady.record, proc(80), ctx(5_000)); // 40 where the rate gives 10
    expect(step.record.progress.batched).toBe(true);
    expect(step.record.progress.last).toEqual({ at: 5_000, done: 80, after: 4_000 });
  });

  it('expires a run that is watched for too long', () => {
    const t = expireRun({ ...start, status: 'PROCESSING' }, 99);
    expect(t.finish).toBe('run.watch_timeout');
    expect(t.events[0]).toMatchObject({
      event: 'run.watch_timeout',
      fields: { last_status: 'PROCESSING', watch_duration_ms: 99 },
    });
  });
});

describe('progress lines', () => {
  it('logs progress when it crosses a tenth of the run, not on every poll', () => {
    let record = applyPoll(start, proc(0), ctx(0)).record;
    const logged: unknown[] = [];
    for (const [i, done] of [3, 7, 12, 15, 19, 35, 100].entries()) {
      const t = applyPoll(record, proc(done), ctx((i + 1) * 1_000));
      record = t.record;
      logged.push(
        ...t.events.filter((e) => e.event === 'run.progress').map((e) => e.fields?.['percent']),
      );
    }
    expect(logged).toEqual([12, 35, 100]);
  });
});

describe('off-spec fields', () => {
  it('finishes a SUCCEEDED run whose optional fields break the spec, with one warning per field', () => {
    const body = JSON.stringify(
      runBody({ status: 'SUCCEEDED', total_cost: '1.37', spec_version: null }),
    );
    const { run: parsed, invalidFields } = parseRunBody(body, RUN_ID);
    const t = applyPoll(start, { ok: true, run: parsed, invalidFields }, ctx(5_000));
    expect(t.finish).toBe('run.succeeded');
    const warnings = t.events.filter((e) => e.event === 'run.field_invalid');
    expect(warnings.map((e) => [e.level, e.fields?.['field']])).toEqual([
      ['warn', 'spec_version'],
      ['warn', 'total_cost'],
    ]);
    expect(warnings[1]?.fields?.['problem']).toMatch(/expected number/);
    expect(t.events.find((e) => e.event === 'run.finished')?.fields).toMatchObject({
      status: 'SUCCEEDED',
      total_cost: null,
    });
  });

  it('cuts what a field warning carries', () => {
    const t = applyPoll(
      start,
      {
        ok: true,
        run: run({ status: 'PROCESSING' }),
        invalidFields: [{ field: 'f'.repeat(10_000), problem: 'p'.repeat(10_000) }],
      },
      ctx(1),
    );
    const fields = t.events.find((e) => e.event === 'run.field_invalid')?.fields;
    expect(fields).toBeDefined();
    expect(String(fields?.['field']).length).toBeLessThanOrEqual(200);
    expect(String(fields?.['problem']).length).toBeLessThanOrEqual(200);
  });
});

describe('bounded output', () => {
  const manyFiles = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `f${i}`, path: `out/${i}.csv` }));

  it('lists at most 20 files in run.finished, with the real count', () => {
    const t = applyPoll(
      start,
      { ok: true, run: run({ status: 'SUCCEEDED', generated_files: manyFiles(200_000) }) },
      ctx(1),
    );
    const fields = t.events.find((e) => e.event === 'run.finished')?.fields;
    expect(fields).toMatchObject({
      generated_files_total: 200_000,
      generated_files_truncated: true,
    });
    expect(fields?.['generated_files']).toHaveLength(20);
    expect(JSON.stringify(fields).length).toBeLessThan(4_000);
  });

  it('cuts a huge status in every line that names it', () => {
    const huge = 'S'.repeat(100_000);
    const seen = applyPoll(start, { ok: true, run: run({ status: huge }) }, ctx(1));
    const expired = expireRun(seen.record, 2);
    for (const event of [...seen.events, ...expired.events]) {
      expect(JSON.stringify(event).length).toBeLessThan(1_000);
    }
    expect(seen.events.map((e) => e.event)).toEqual(['run.status_changed', 'run.unknown_status']);
  });

  it('cuts free text in run.finished (names, dates, file paths)', () => {
    const long = 'n'.repeat(100_000);
    const t = applyPoll(
      start,
      {
        ok: true,
        run: run({
          status: 'FAILED',
          spec_name: long,
          dataset_name: long,
          generated_files: [{ id: long, path: long, file_type: long }],
        }),
      },
      ctx(1),
    );
    const fields = t.events.find((e) => e.event === 'run.finished')?.fields;
    expect(JSON.stringify(fields).length).toBeLessThan(6_000);
  });

  it('reports a too large body as poll.failed with its code and the limit, and polls again', () => {
    const t = applyPoll(
      start,
      {
        ok: false,
        error: new ResponseTooLargeError('too large', RUN_ID, 200, 5 * 1024 * 1024),
      },
      ctx(1_000),
    );
    expect(t.finish).toBeNull();
    expect(t.events[0]).toMatchObject({
      event: 'poll.failed',
      level: 'warn',
      fields: { error: { code: 'RESPONSE_TOO_LARGE', status: 200, limit_bytes: 5 * 1024 * 1024 } },
    });
    expect(t.record.nextDueAt).toBeGreaterThan(1_000);
  });

  it('cuts the message of an unexpected error', () => {
    const t = applyPoll(start, { ok: false, error: new Error('m'.repeat(100_000)) }, ctx(1));
    expect(JSON.stringify(t.events[0]).length).toBeLessThan(1_500);
  });
});
