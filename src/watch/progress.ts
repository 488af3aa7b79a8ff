import type { Run } from '../dataframer/schema.js';
import type { Progress } from '../domain/run.js';
import { jumpLooksBatched, rateAnchor } from './poll-policy.js';

/** samples_completed + samples_failed: the count progress is measured in. */
export function samplesDone(run: Run): number {
  return (run.samples_completed ?? 0) + (run.samples_failed ?? 0);
}

/** Whether a look that counts `done` samples saw the count change. */
export function hasProgressed(progress: Progress, done: number): boolean {
  return progress.last ? done !== progress.last.done : done > 0;
}

/** Whether going from `before` to `done` samples crosses a tenth of `total`: worth a log line. */
export function crossedTenth(before: number, done: number, total: number): boolean {
  const tenth = (count: number) => Math.floor((Math.min(count, total) * 10) / total);
  return tenth(done) > tenth(before);
}

export interface Look {
  now: number;
  status: string;
  done: number;
  total: number | undefined;
  statusChanged: boolean;
  /** The previous look with an answer, if any. */
  lastPolledAt: number | null;
}

/**
 * What one answer changes in a run's progress: the points the poll policy measures the rate
 * from, and whether progress comes in batches (docs/polling.md).
 */
export function trackProgress(progress: Progress, look: Look): Progress {
  const { now, done } = look;
  let { start, last, change, batched } = progress;
  const progressed = hasProgressed(progress, done);
  // A look that finds a moving run's count unchanged, or a jump the measured rate cannot
  // explain, shows progress reported in batches (or whole samples slower than the looks): from
  // then on a change is placed between two looks.
  const moving = start !== null && !!look.total && done < look.total;
  if (moving && !look.statusChanged && !progressed) batched = true;
  const anchor = rateAnchor(progress);
  if (moving && progressed && anchor && last && jumpLooksBatched(anchor, last, done, now))
    batched = true;
  // PENDING says nothing about speed, so measuring starts once the run has left it.
  if (look.status !== 'PENDING' && (start === null || done < start.done)) {
    start = { at: now, done, after: now };
    return { start, last: start, change: null, batched: false };
  }
  if (progressed) {
    // Batched progress changed somewhere after the previous look; steady progress is current.
    const after = batched && look.lastPolledAt !== null ? look.lastPolledAt : now;
    last = { at: now, done, after };
    if (start !== null) change ??= last;
  }
  return { start, last, change, batched };
}
