import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { intBetween, mulberry32, numberBetween, pick, uuidFrom, weightedPick } from './random.js';

export type Outcome = 'SUCCEEDED' | 'FAILED' | 'CANCELED';
export type ProgressShape = 'linear' | 'steps' | 'tail';

export const OUTCOMES = ['SUCCEEDED', 'FAILED', 'CANCELED'] as const satisfies readonly Outcome[];
export const PROGRESS_SHAPES = [
  'linear',
  'steps',
  'tail',
] as const satisfies readonly ProgressShape[];

/** One run's life, in milliseconds counted from the simulator's start. */
export interface RunTimeline {
  runId: string;
  /** When the run becomes visible (PENDING); before it the API answers 404. */
  startMs: number;
  pendingMs: number;
  /** PROCESSING lasts this long, then the run is `outcome`. */
  processingMs: number;
  outcome: Outcome;
  numberOfSamples: number;
  shape: ProgressShape;
  /** Share of the processed samples that fail. */
  failedRatio: number;
}

export interface Scenario {
  runs: RunTimeline[];
}

const Millis = z.number().int().nonnegative();

export const RunTimeline = z.strictObject({
  runId: z.guid(),
  startMs: Millis,
  pendingMs: Millis,
  processingMs: Millis,
  outcome: z.enum(OUTCOMES),
  numberOfSamples: z.number().int().nonnegative(),
  shape: z.enum(PROGRESS_SHAPES),
  failedRatio: z.number().min(0).max(1),
}) satisfies z.ZodType<RunTimeline>;

/** Strict, so a typo in a hand-written scenario file is an error rather than a silent default. */
export const Scenario = z
  .strictObject({ runs: z.array(RunTimeline) })
  .superRefine((scenario, ctx) => {
    // Two timelines for one id would make the served body depend on lookup order.
    const seen = new Set<string>();
    scenario.runs.forEach((run, index) => {
      const id = run.runId.toLowerCase();
      if (seen.has(id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['runs', index, 'runId'],
          message: `duplicate run id ${run.runId}`,
        });
      }
      seen.add(id);
    });
  }) satisfies z.ZodType<Scenario>;

export interface GenerateScenarioOptions {
  seed: number;
  count: number;
  /** Runs start spread uniformly over [0, startSpreadMs). */
  startSpreadMs?: number;
  /** Bounds of a run's whole life, PENDING plus PROCESSING. */
  minDurationMs?: number;
  maxDurationMs?: number;
  /** Relative weights; outcomes left out get weight 0 unless all are left out. */
  outcomes?: Partial<Record<Outcome, number>>;
  shapes?: ProgressShape[];
}

const DEFAULT_OUTCOMES: Record<Outcome, number> = { SUCCEEDED: 0.8, FAILED: 0.1, CANCELED: 0.1 };
const SAMPLE_COUNTS = [10, 20, 50, 100, 200, 500, 1000] as const;

/** The same options always give the same scenario, run ids included. */
export function generateScenario(opts: GenerateScenarioOptions): Scenario {
  const startSpreadMs = opts.startSpreadMs ?? 5_000;
  const minDurationMs = opts.minDurationMs ?? 5_000;
  const maxDurationMs = opts.maxDurationMs ?? 30_000;
  if (!Number.isInteger(opts.count) || opts.count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${opts.count}`);
  }
  if (startSpreadMs < 0 || minDurationMs < 0 || maxDurationMs < minDurationMs) {
    throw new RangeError('need 0 <= startSpreadMs and 0 <= minDurationMs <= maxDurationMs');
  }
  const weights = OUTCOMES.map(
    (outcome) =>
      [
        outcome,
        opts.outcomes?.[outcome] ?? (opts.outcomes ? 0 : DEFAULT_OUTCOMES[outcome]),
      ] as const,
  );
  if (weights.some(([, w]) => !(w >= 0)) || weights.every(([, w]) => w === 0)) {
    throw new RangeError('outcome weights must be non-negative with at least one above 0');
  }
  const [firstShape, ...otherShapes] = opts.shapes ?? PROGRESS_SHAPES;
  if (firstShape === undefined) throw new RangeError('shapes must not be empty');
  const shapes = [firstShape, ...otherShapes] as const;

  const random = mulberry32(opts.seed);
  const runs: RunTimeline[] = [];
  for (let i = 0; i < opts.count; i++) {
    const runId = uuidFrom(random);
    const startMs = Math.floor(random() * startSpreadMs);
    const durationMs = intBetween(random, minDurationMs, maxDurationMs);
    // Runs queue briefly (10-25% of their life) before the workers pick them up.
    const pendingMs = Math.round(durationMs * numberBetween(random, 0.1, 0.25));
    const outcome = weightedPick(random, weights);
    // Failed runs fail because many samples do; the others lose only a few.
    const failedRatio =
      outcome === 'FAILED' ? numberBetween(random, 0.2, 0.6) : numberBetween(random, 0, 0.05);
    runs.push({
      runId,
      startMs,
      pendingMs,
      processingMs: durationMs - pendingMs,
      outcome,
      numberOfSamples: pick(random, SAMPLE_COUNTS),
      shape: pick(random, shapes),
      failedRatio: Math.round(failedRatio * 1000) / 1000,
    });
  }
  return { runs };
}

/** Offset from the simulator's start at which the run reaches its terminal status. */
export function finishOffsetMs(run: RunTimeline): number {
  return run.startMs + run.pendingMs + run.processingMs;
}

/** Reads and validates a scenario JSON file; errors name the file and the offending path. */
export function loadScenarioFile(path: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(
      `scenario file ${path}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  const result = Scenario.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${formatPath(issue.path)}: ${issue.message}`,
    );
    throw new Error(`scenario file ${path}: ${problems.join('; ')}`);
  }
  return result.data;
}

/** `runs[2].outcome`, the way a person would point into the JSON. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, index) =>
      typeof key === 'number' ? `[${key}]` : `${index === 0 ? '' : '.'}${String(key)}`,
    )
    .join('');
}
