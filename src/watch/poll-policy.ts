import type { PollPolicy } from '../config/schema.js';
import type { Progress, ProgressPoint, RunRecord } from '../domain/run.js';

export interface PollTiming {
  minMs: number;
  maxMs: number;
  /**
   * `adaptive` (default) uses progress and falls back to backoff; `fixed` polls every minMs and
   * `exponential` is plain backoff (as the AWS SDK waiters do): the baselines of bench/.
   */
  policy?: PollPolicy;
}

export interface PollState {
  unchangedPolls: number;
  /** runtime_params.number_of_samples, when the API gave it. */
  totalSamples: number | null;
  /** What has been seen of the run's progress (see Progress). */
  progress: Progress;
  /** How long the run has been watched: the clock of the plain `exponential` baseline. */
  watchedMs: number;
}

/** What the policy reads of a run's record: its last snapshot's total, its progress, its age. */
export function pollStateOf(record: RunRecord, now: number): PollState {
  return {
    unchangedPolls: record.unchangedPolls,
    totalSamples: record.snapshot?.runtime_params?.number_of_samples ?? null,
    progress: record.progress,
    watchedMs: now - record.addedAt,
  };
}

/**
 * Tuning of the adaptive policy, as multiples of the min interval (or shares); measured with
 * bench/ (`npm run bench -- replay`, then the live comparison) on the simulator's linear,
 * steps and tail shapes.
 */
const ADAPTIVE = {
  /** PENDING: uniformly in [0.9, 1] of the max interval. */
  pendingShareOfMax: 0.9,
  /**
   * Moving but no rate yet (one progress point): look again after 2 min intervals; if that
   * look finds no change, wait as long as the run has been seen processing (batched progress
   * steps rarely, a stall may last).
   */
  firstRateGap: 2,
  /** Far from the window where the end can be: look again this share of the way to it. */
  approachShare: 0.85,
  /** Aim straight at a window that opens within 3 min intervals... */
  aimWithin: 3,
  /** ...or at a sharp one (at most 1 min interval wide) within max. */
  aimWidth: 1,
  /** Aimed polls land uniformly in [80%, 100%] of the way: never late by jitter, and spread. */
  aimJitter: 0.2,
  /** Rounding of whole-sample counts, as a share of its worst case (finishIn / gained). */
  slackShare: 0.5,
  /**
   * Inside the window (and once every sample is done): look every 1.46-1.55 min intervals, so
   * an end there is seen within 1.55 of them, and 95% of them within 1.5 (a uniform lag).
   */
  windowSpacing: 1.55,
  windowSpacingJitter: 0.06,
  /** Past the window (a stall, or a slower end): wait half as long as it is overdue. */
  overdueShare: 0.5,
  /** Every sample done for long: wait a tenth of the time since the last sample. */
  finishingShare: 0.1,
} as const;

/**
 * A change of this many times more (or fewer) samples than the measured rate gives for the time
 * since the last change shows progress reported in batches, even when no look fell on a plateau.
 */
export const BATCH_JUMP_RATIO = 1.5;

/**
 * Whether a change from `last` to `done` at `now` looks batched: too big or too small a jump
 * for the rate measured from `anchor` to `last` (one sample of rounding allowed either way).
 */
export function jumpLooksBatched(
  anchor: ProgressPoint,
  last: ProgressPoint,
  done: number,
  now: number,
): boolean {
  const elapsed = last.at - anchor.at;
  const gained = last.done - anchor.done;
  if (elapsed <= 0 || gained <= 0) return false;
  const expected = (gained / elapsed) * (now - last.at);
  const jump = done - last.done;
  return jump > BATCH_JUMP_RATIO * expected + 1 || jump < expected / BATCH_JUMP_RATIO - 1;
}

/** The point the rate is measured from (see Progress.change). */
export function rateAnchor(progress: Progress): ProgressPoint | null {
  const { start, last, change } = progress;
  // A first look may have landed anywhere inside a step of batched progress, a change only
  // just after a step: once a later change exists, measure from the first change.
  return change && last && last.at > change.at ? change : start;
}

interface Outlook {
  remaining: number;
  /** Epoch ms of the earliest and the latest moment the last sample can be done at that rate. */
  windowStart: number | null;
  windowEnd: number | null;
}

function outlookOf(state: PollState): Outlook | null {
  const { totalSamples } = state;
  const last = state.progress.last;
  const anchor = rateAnchor(state.progress);
  if (!totalSamples || !anchor || !last) return null;
  const elapsed = last.at - anchor.at;
  const gained = last.done - anchor.done;
  const remaining = totalSamples - last.done;
  if (elapsed <= 0 || gained <= 0 || remaining <= 0)
    return { remaining, windowStart: null, windowEnd: null };
  const msPerSample = elapsed / gained;
  const finishIn = remaining * msPerSample;
  // Counts are whole samples: each end of the measured slope is off by up to one sample, so
  // the prediction is off by up to finishIn / gained (half of that is the typical error, and
  // what the window allows), and the last count by up to one sample's time.
  const slack = (ADAPTIVE.slackShare * finishIn) / gained;
  return {
    remaining,
    windowStart: Math.min(last.after, last.at - msPerSample) + finishIn - slack,
    windowEnd: last.at + finishIn + slack,
  };
}

/**
 * Epoch ms between which the run's last sample will be done at the measured rate; null when
 * progress says nothing (no total, no movement yet, or every sample already done).
 */
export function predictedEndWindow(state: PollState): { start: number; end: number } | null {
  const outlook = outlookOf(state);
  if (outlook?.windowStart == null || outlook.windowEnd == null) return null;
  return { start: outlook.windowStart, end: outlook.windowEnd };
}

/**
 * Delay before the next poll of a run (pure; `random` in [0, 1)). Always within [min, max].
 *
 * `adaptive` spends polls where the end can be, since a poll costs the API's rate limit and
 * one that lands well after the end costs detection time:
 * - No total: exponential backoff with full jitter (below); a failed poll lands here too.
 * - PENDING (a total, no progress point yet): the end is at least the whole processing away,
 *   and the rate is measured once it moves, so look rarely: [0.9, 1] of the max interval.
 * - Moving, one progress point: look again after 2 min intervals to measure the rate; if that
 *   look finds the count unchanged, wait as long as the run has been seen processing.
 * - A rate gives a window in which the last sample can be done: from the earliest moment the
 *   latest change can have happened to the latest. Once progress shows batches (a look found
 *   the count unchanged, or a jump the rate cannot explain), a change happened somewhere
 *   between two looks; whole-sample counts round either way. Far from the window, look again
 *   85% of the way (at most max), which refines the rate; when it opens within 3 min
 *   intervals, or is sharp (at most 1 min interval wide) and within max, aim at its start,
 *   jittered early (never late) so runs that end together spread out; inside it, look every
 *   1.46-1.55 min intervals.
 * - Past the window with samples left (a stall, or a slowdown): wait half as long as it is
 *   overdue, so a run that is nearly done is seen soon and a stalled one backs off to max.
 * - Every sample done, run not ended (finishing work after the last sample): the end is
 *   imminent, though not instant: look every 1.46-1.55 min intervals, and once that has lasted
 *   long, a tenth of the time since the last sample (at most max), so a run stuck there for
 *   hours is not polled at the fastest pace for days.
 *
 * `exponential` (the baseline) waits uniformly in [min, clamp(watched time, min, max)]: without
 * jitter that doubles every wait, like the AWS SDK waiters, and it never looks at progress.
 * `fixed` waits min.
 */
export function nextPollDelay(
  state: PollState,
  timing: PollTiming,
  now: number,
  random: () => number,
): number {
  const { minMs, maxMs, policy = 'adaptive' } = timing;
  const within = (ms: number) => clamp(ms, minMs, maxMs);
  if (policy === 'fixed') return minMs;
  if (policy === 'exponential')
    return Math.round(minMs + random() * (within(state.watchedMs) - minMs));

  const backoff = () => {
    const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(state.unchangedPolls, 30));
    return Math.round(minMs + random() * (ceiling - minMs));
  };
  const jitter = ADAPTIVE.windowSpacingJitter;
  const closeLook = () => within(ADAPTIVE.windowSpacing * minMs * (1 - jitter + jitter * random()));
  if (!state.totalSamples) return backoff();
  const outlook = outlookOf(state);
  if (outlook === null) {
    const share = ADAPTIVE.pendingShareOfMax;
    return within(maxMs * (share + (1 - share) * random()));
  }
  const { start, last } = state.progress;
  if (outlook.remaining <= 0) {
    const sinceLastSample = last ? now - last.at : 0;
    return within(Math.max(closeLook(), ADAPTIVE.finishingShare * sinceLastSample));
  }
  const { windowStart, windowEnd } = outlook;
  if (windowStart === null || windowEnd === null) {
    if (state.unchangedPolls === 0) return within(ADAPTIVE.firstRateGap * minMs);
    return start ? within(now - start.at) : backoff();
  }
  if (now > windowEnd) return within(ADAPTIVE.overdueShare * (now - windowEnd));
  if (now >= windowStart) return closeLook();
  const opensIn = windowStart - now;
  const sharp = windowEnd - windowStart <= ADAPTIVE.aimWidth * minMs && opensIn <= maxMs;
  if (sharp || opensIn <= ADAPTIVE.aimWithin * minMs)
    return within(opensIn * (1 - ADAPTIVE.aimJitter * random()));
  return within(opensIn * ADAPTIVE.approachShare);
}

function clamp(value: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, value)));
}
