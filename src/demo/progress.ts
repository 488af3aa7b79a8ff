import { hashString, mulberry32, numberBetween } from './random.js';
import type { Outcome, ProgressShape, RunTimeline } from './scenario.js';
import { finishOffsetMs } from './scenario.js';

export type SimulatedStatus = 'PENDING' | 'PROCESSING' | Outcome;

export interface Progress {
  status: SimulatedStatus;
  terminal: boolean;
  /** Milliseconds since the simulator's start at which the run became visible / will end. */
  createdMs: number;
  finishedMs: number;
  samplesCompleted: number;
  samplesFailed: number;
}

/** Share of the samples done after `x` (0..1) of the processing time, before the end. */
export function shapeFraction(shape: ProgressShape, x: number): number {
  const clamped = Math.min(1, Math.max(0, x));
  switch (shape) {
    case 'linear':
      return clamped;
    case 'steps':
      // Workers report in batches: 0, 20, 40, 60, 80 % while processing, 100 % at the end.
      return Math.floor(clamped * 5) / 5;
    case 'tail':
      // Every sample is done at 70 % of the time; the run then lingers (post-processing,
      // upload) and only the status says it has ended, which a progress-based poller must survive.
      return Math.min(1, clamped / 0.7);
  }
}

/**
 * How many samples the run processes by its end: all of them when it succeeds; a failed or
 * canceled run stops short, at 30-90 % (fixed per run id so every poll agrees).
 */
export function finalProcessed(run: RunTimeline): number {
  const total = run.numberOfSamples;
  if (run.outcome === 'SUCCEEDED' || total === 0) return total;
  const share = numberBetween(mulberry32(hashString(`${run.runId}:stop`)), 0.3, 0.9);
  return Math.min(total - 1, Math.floor(total * share));
}

/** The run's state `elapsedMs` after the simulator's start; null while it does not exist yet. */
export function progressAt(run: RunTimeline, elapsedMs: number): Progress | null {
  if (elapsedMs < run.startMs) return null;
  const processingFromMs = run.startMs + run.pendingMs;
  const finishedMs = finishOffsetMs(run);
  const target = finalProcessed(run);

  let status: SimulatedStatus;
  let processed: number;
  if (elapsedMs >= finishedMs) {
    status = run.outcome;
    processed = target;
  } else if (elapsedMs < processingFromMs) {
    status = 'PENDING';
    processed = 0;
  } else {
    status = 'PROCESSING';
    processed = Math.floor(
      target * shapeFraction(run.shape, (elapsedMs - processingFromMs) / run.processingMs),
    );
  }
  // Rounding a non-decreasing count keeps both counters non-decreasing as `processed` grows.
  const samplesFailed = Math.round(processed * run.failedRatio);
  return {
    status,
    terminal: status !== 'PENDING' && status !== 'PROCESSING',
    createdMs: run.startMs,
    finishedMs,
    samplesCompleted: processed - samplesFailed,
    samplesFailed,
  };
}
