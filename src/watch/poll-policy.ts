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
  progressStart: ProgressPoint | null;
  progressLast: ProgressPoint | null;
}

/**
 * Milliseconds from `now` until the predicted end of the run, from the average progress rate
 * between the first and the latest progress seen; null when progress says nothing (no total,
 * no movement yet, every sample already done but the run not ended, or the predicted end passed).
 */
export function predictedFinishIn(state: PollState, now: number): number | null {
  const { totalSamples, progressStart, progressLast } = state;
  if (!totalSamples || !progressStart || !progressLast) return null;
  const elapsed = progressLast.at - progressStart.at;
  const gained = progressLast.done - progressStart.done;
  const remaining = totalSamples - progressLast.done;
  if (elapsed <= 0 || gained <= 0 || remaining <= 0) return null;
  const finishAt = progressLast.at + (remaining * elapsed) / gained;
  // A prediction already passed says the run stalled or slowed: fall back to backoff.
  return finishAt > now ? finishAt - now : null;
}

/**
 * Delay before the next poll of a run (pure; `random` in [0, 1)).
 * - Progress predicts the end: aim the poll just after it, within [min, max].
 * - Otherwise exponential backoff with full jitter: uniform in [min, min * 2^unchanged],
 *   capped at max, so idle runs cost little and many runs do not poll in lockstep.
 */
export function nextPollDelay(
  state: PollState,
  timing: PollTiming,
  now: number,
  random: () => number,
): number {
  const { minMs, maxMs, policy = 'adaptive' } = timing;
  if (policy === 'fixed') return minMs;
  const finishIn = policy === 'adaptive' ? predictedFinishIn(state, now) : null;
  if (finishIn !== null) {
    // A little after the predicted end, spread by 10% so runs ending together spread out.
    return clamp(finishIn * (1 + 0.1 * random()), minMs, maxMs);
  }
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(state.unchangedPolls, 30));
  return Math.round(minMs + random() * (ceiling - minMs));
}

function clamp(value: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, value)));
}
