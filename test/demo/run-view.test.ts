import { describe, expect, it } from '@jest/globals';
import { Run } from '../../src/dataframer/schema.js';
import { shapeFraction } from '../../src/demo/progress.js';
import { runAt } from '../../src/demo/run-view.js';
import {
  OUTCOMES,
  PROGRESS_SHAPES,
  generateScenario,
  type Outcome,
  type ProgressShape,
  type RunTimeline,
} from '../../src/demo/scenario.js';

const EPOCH = Date.parse('2026-11-23T06:00:00.000Z');

function timeline(
  outcome: Outcome,
  shape: ProgressShape,
  overrides: Partial<RunTimeline> = {},
): RunTimeline {
  return {
    runId: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
    startMs: 1_000,
    pendingMs: 2_000,
    processingMs: 10_000,
    outcome,
    numberOfSamples: 100,
    shape,
    failedRatio: 0.1,
    ...overrides,
  };
}

/** Bodies from before the start to past the end, in 1% steps of the run's life. */
function lifetime(run: RunTimeline): { elapsed: number; body: Run | null }[] {
  const end = run.startMs + run.pendingMs + run.processingMs;
  const points: { elapsed: number; body: Run | null }[] = [];
  for (let i = -5; i <= 110; i++) {
    const elapsed = Math.round((end * i) / 100);
    const raw = runAt(run, elapsed, EPOCH);
    points.push({ elapsed, body: raw === null ? null : Run.parse(raw) });
  }
  return points;
}

const ORDER = ['PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED', 'CANCELED'];
const SPEC_RUNTIME_PARAMS = [
  'number_of_samples',
  'generation_model',
  'outline_model',
  'revision_model',
  'revision_types',
  'filtering_types',
  'max_revision_cycles',
  'seed_shuffling_level',
  'max_examples_in_prompt',
  'unified_multifield',
  'generation_thinking_budget',
  'outline_thinking_budget',
  'revision_thinking_budget',
  'skip_outline',
  'tools',
];

describe('runAt', () => {
  describe.each(OUTCOMES.flatMap((o) => PROGRESS_SHAPES.map((s) => [o, s] as const)))(
    '%s run with %s progress',
    (outcome, shape) => {
      const run = timeline(outcome, shape);
      const points = lifetime(run);

      it('passes the watcher Run schema at every moment it exists, and is 404 before', () => {
        for (const { elapsed, body } of points) {
          if (elapsed < run.startMs) expect(body).toBeNull();
          else expect(body).not.toBeNull();
        }
      });

      it('moves forward only: status order, samples, terminal fields', () => {
        const bodies = points.flatMap(({ body }) => (body ? [body] : []));
        for (let i = 1; i < bodies.length; i++) {
          const [prev, cur] = [bodies[i - 1]!, bodies[i]!];
          expect(ORDER.indexOf(cur.status)).toBeGreaterThanOrEqual(ORDER.indexOf(prev.status));
          expect(cur.samples_completed!).toBeGreaterThanOrEqual(prev.samples_completed!);
          expect(cur.samples_failed!).toBeGreaterThanOrEqual(prev.samples_failed!);
        }
        for (const body of bodies) {
          const terminal = body.status === outcome;
          expect(body.samples_completed! + body.samples_failed!).toBeLessThanOrEqual(100);
          expect(body.total_cost === null).toBe(!terminal);
          expect(body.completed_at === null).toBe(!terminal);
          expect(body.generated_files!.length > 0).toBe(body.status === 'SUCCEEDED');
          expect(body.created_at).toBe('2026-11-23T06:00:01.000Z');
        }
        expect(bodies[0]!.status).toBe('PENDING');
        expect(bodies.some((b) => b.status === 'PROCESSING')).toBe(true);
      });

      it('ends with the outcome, all samples when it succeeded, fewer otherwise', () => {
        const last = points.at(-1)!.body!;
        expect(last.status).toBe(outcome);
        expect(last.completed_at).toBe('2026-11-23T06:00:13.000Z');
        expect(last.total_cost).toBeGreaterThan(0);
        const done = last.samples_completed! + last.samples_failed!;
        if (outcome === 'SUCCEEDED') expect(done).toBe(100);
        else expect(done).toBeLessThan(100);
        expect(last.samples_failed).toBe(Math.round(done * 0.1));
      });
    },
  );

  it('grows linearly, in about five steps, or reaches every sample at 70% of the time (tail)', () => {
    const processed = (shape: ProgressShape, x: number) => {
      const body = runAt(timeline('SUCCEEDED', shape), 3_000 + x * 10_000, EPOCH)!;
      return (body['samples_completed'] as number) + (body['samples_failed'] as number);
    };
    expect(processed('linear', 0.5)).toBe(50);
    expect(processed('linear', 0.25)).toBe(25);

    const stepValues = new Set<number>();
    for (let x = 0; x < 1; x += 0.01) stepValues.add(processed('steps', x));
    expect([...stepValues].sort((a, b) => a - b)).toEqual([0, 20, 40, 60, 80]);

    expect(processed('tail', 0.35)).toBe(50);
    for (const x of [0.7, 0.8, 0.99]) {
      const body = runAt(timeline('SUCCEEDED', 'tail'), 3_000 + x * 10_000, EPOCH)!;
      expect(body['status']).toBe('PROCESSING');
      expect(processed('tail', x)).toBe(100);
    }
    expect(shapeFraction('tail', 0.7)).toBe(1);
  });

  it('fills every runtime_params field of the spec and is the same at every call', () => {
    const run = timeline('SUCCEEDED', 'linear');
    const body = runAt(run, 20_000, EPOCH)!;
    expect(Object.keys(body['runtime_params'] as object).sort()).toEqual(
      [...SPEC_RUNTIME_PARAMS].sort(),
    );
    expect(runAt(run, 20_000, EPOCH)).toEqual(body);
    const files = Run.parse(body).generated_files!;
    expect(files.map((f) => f.path)).toEqual(['out/data.csv', 'out/data.jsonl', 'out/report.json']);
    for (const file of files) {
      expect(file.id).toMatch(/^[0-9a-f]{24}$/);
      expect(file.file_type).toMatch(/^(text|application)\//);
      expect(file.size_bytes).toBeGreaterThan(0);
    }
  });

  it('makes some runs seedless (dataset fields null, no dataset_type) and the rest seeded', () => {
    const { runs } = generateScenario({ seed: 21, count: 200 });
    const bodies = runs.map((run) => Run.parse(runAt(run, 10 ** 9, EPOCH)));
    const seedless = bodies.filter((b) => b.dataset_id === null);
    const seeded = bodies.filter((b) => b.dataset_id !== null);
    expect(seedless.length).toBeGreaterThan(20);
    expect(seeded.length).toBeGreaterThan(20);
    for (const b of seedless) {
      expect(b.dataset_name).toBeNull();
      expect(b).not.toHaveProperty('dataset_type');
      expect(b.runtime_params?.seed_shuffling_level).toBe('none');
    }
    for (const b of seeded)
      expect(['SINGLE_FILE', 'MULTI_FILE', 'MULTI_FOLDER']).toContain(b.dataset_type);
  });

  it('passes the schema for generated runs at many moments', () => {
    const { runs } = generateScenario({ seed: 99, count: 60, startSpreadMs: 1_000 });
    let checked = 0;
    for (const run of runs) {
      for (let t = 0; t <= 32_000; t += 500) {
        const raw = runAt(run, t, EPOCH);
        if (raw === null) continue;
        expect(Run.safeParse(raw).success).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(3_000);
  });

  it('handles edge timelines: no pending, no processing, no samples', () => {
    const instant = timeline('SUCCEEDED', 'linear', { pendingMs: 0, processingMs: 0 });
    expect(runAt(instant, 999, EPOCH)).toBeNull();
    expect(Run.parse(runAt(instant, 1_000, EPOCH)).status).toBe('SUCCEEDED');
    const empty = timeline('FAILED', 'steps', { numberOfSamples: 0 });
    const body = Run.parse(runAt(empty, 20_000, EPOCH));
    expect(body.samples_completed).toBe(0);
    expect(body.total_cost).toBe(0);
    const one = timeline('CANCELED', 'tail', { numberOfSamples: 1 });
    expect(Run.parse(runAt(one, 20_000, EPOCH)).samples_completed).toBe(0);
  });
});
