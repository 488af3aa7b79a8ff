import type { ProgressPoint } from '../store/types.js';

export const POLL_POLICIES = ['adaptive', 'fixed', 'exponential'] as const;
export type PollPolicy = (typeof POLL_POLICIES)[number];

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
  /** First and latest progress seen since the run left PENDING (null while it has not). */
  progressStart: ProgressPoint | null;
  progressLast: ProgressPoint | null;
  /** How long the run has been watched: the clock of the plain `exponential` baseline. */
  watchedMs: number;
}

/**
 * Tuning of the adaptive policy, as multiples of the min interval (or shares); measured with
 * bench/ (bench/RESULTS.md) on the simulator's linear, steps and tail shapes.
 */
const ADAPTIVE = {
  /** PENDING: uniformly in [0.75, 1] of the max interval. */
  pendingShareOfMax: 0.75,
  /** Moving but no rate yet (one progress point): look again after 2 min intervals. */
  firstRateGap: 2,
  /** A prediction too uncertain to aim at: look again this share of the way to it. */
  approachShare: 0.55,
  /** Aim at a prediction whose uncertainty is at most half a min interval... */
  aimUncertainty: 0.5,
  /** ...or that is at most 3 min intervals away (the poll after it is then soon anyway). */
  aimWithin: 3,
  /** Aimed polls land uniformly in [55%, 100%] of the way to the predicted end. */
  aimEarlyShare: 0.45,
  /** Every sample done but the run not ended: the end is imminent; look every 1.35-1.5 min. */
  completeSpacing: 1.5,
  /** The predicted end has passed (a stall, or steps): wait half as long as it is overdue. */
  overdueShare: 0.5,
} as const;

interface Progress {
  /** samples_completed + samples_failed at the latest change. */
  done: number;
  remaining: number;
  /** Samples done between the first and the latest progress. */
  gained: number;
  /** Milliseconds per sample between the first and the latest progress; null before movement. */
  msPerSample: number | null;
  /** Epoch ms at which the run will have done every sample at that rate. */
  finishAt: number | null;
}

function progressOf(state: PollState): Progress | null {
  const { totalSamples, progressStart, progressLast } = state;
  if (!totalSamples || !progressStart || !progressLast) return null;
  const elapsed = progressLast.at - progressStart.at;
  const gained = progressLast.done - progressStart.done;
  const remaining = totalSamples - progressLast.done;
  const msPerSample = elapsed > 0 && gained > 0 ? elapsed / gained : null;
  return {
    done: progressLast.done,
    remaining,
    gained,
    msPerSample,
    finishAt:
      msPerSample !== null && remaining > 0 ? progressLast.at + remaining * msPerSample : null,
  };
}

/**
 * Milliseconds from `now` until the predicted end of the run, from the average progress rate
 * between the first and the latest progress seen; null when progress says nothing (no total,
 * no movement yet, every sample already done but the run not ended, or the predicted end passed).
 */
export function predictedFinishIn(state: PollState, now: number): number | null {
  const finishAt = progressOf(state)?.finishAt ?? null;
  // A prediction already passed says the run stalled or slowed: fall back to backoff.
  return finishAt !== null && finishAt > now ? finishAt - now : null;
}

/**
 * Delay before the next poll of a run (pure; `random` in [0, 1)). Always within [min, max].
 *
 * `adaptive` spends polls where the end can be, since a poll costs the API's rate limit and
 * one that lands well after the end costs detection time:
 * - No total: exponential backoff with full jitter (below); a failed poll lands here too.
 * - PENDING (a total, no progress point yet): the end is at least the whole processing away,
 *   and the rate is measured once it moves, so look rarely: [0.75, 1] of the max interval.
 * - Moving, one progress point: look again after 2 min intervals to measure the rate; without
 *   movement after that, backoff.
 * - A rate predicts the end `R` away: aim at it when the prediction is sharp (its uncertainty,
 *   R / samples gained (rounding of the counts) plus one sample's time, is at most half a min
 *   interval) or near (R at most 3 min intervals); the aimed poll lands uniformly in [55%, 100%]
 *   of R, so it is never late by jitter and runs that end together spread out. A vague or far
 *   prediction gets a look 55% of the way (at most max), which refines it: tighter and tighter
 *   near the end.
 * - The predicted end passed with samples left (a stall, or progress reported in steps): wait
 *   half as long as it is overdue, so a run that is nearly done is seen soon and a stalled
 *   one backs off to the max interval.
 * - Every sample done, run not ended (finishing work after the last sample): the end is
 *   imminent, though not instant: look every 1.35-1.5 min intervals.
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
  if (!state.totalSamples) return backoff();
  const progress = progressOf(state);
  if (progress === null) {
    const share = ADAPTIVE.pendingShareOfMax;
    return within(maxMs * (share + (1 - share) * random()));
  }
  if (progress.remaining <= 0)
    return within(ADAPTIVE.completeSpacing * minMs * (0.9 + 0.1 * random()));
  const { msPerSample, finishAt, gained } = progress;
  if (msPerSample === null || finishAt === null) {
    return state.unchangedPolls === 0 ? within(ADAPTIVE.firstRateGap * minMs) : backoff();
  }

  const finishIn = finishAt - now;
  if (finishIn <= 0) return within(ADAPTIVE.overdueShare * (now - finishAt));
  const uncertainty = finishIn / gained + msPerSample;
  const sharp = uncertainty <= ADAPTIVE.aimUncertainty * minMs;
  const near = finishIn <= ADAPTIVE.aimWithin * minMs;
  if (finishIn <= maxMs && (sharp || near)) {
    return within(finishIn * (1 - ADAPTIVE.aimEarlyShare * random()));
  }
  return within(finishIn * ADAPTIVE.approachShare);
}

function clamp(value: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, value)));
}
