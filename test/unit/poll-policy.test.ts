import { describe, expect, it } from '@jest/globals';
import { nextPollDelay, predictedFinishIn, type PollState } from '../../src/watch/poll-policy.js';

const timing = { minMs: 1_000, maxMs: 10_000 };
const idle: PollState = {
  unchangedPolls: 0,
  totalSamples: null,
  progressStart: null,
  progressLast: null,
};
const low = () => 0;
const high = () => 0.999_999;

describe('nextPollDelay without progress: exponential backoff with full jitter', () => {
  it('stays within [min, min * 2^n] and caps at max', () => {
    expect(nextPollDelay(idle, timing, 0, low)).toBe(1_000);
    expect(nextPollDelay(idle, timing, 0, high)).toBe(1_000);
    expect(nextPollDelay({ ...idle, unchangedPolls: 2 }, timing, 0, high)).toBe(4_000);
    expect(nextPollDelay({ ...idle, unchangedPolls: 3 }, timing, 0, high)).toBe(8_000);
    expect(nextPollDelay({ ...idle, unchangedPolls: 50 }, timing, 0, high)).toBe(10_000);
    expect(nextPollDelay({ ...idle, unchangedPolls: 50 }, timing, 0, low)).toBe(1_000);
  });

  it('spreads delays across the jitter range', () => {
    const delays = [0.1, 0.5, 0.9].map((r) =>
      nextPollDelay({ ...idle, unchangedPolls: 3 }, timing, 0, () => r),
    );
    expect(delays).toEqual([1_700, 4_500, 7_300]);
  });
});

describe('progress-aware polling', () => {
  // A synthetic timeline: 100 samples, 10 per second from t=0.
  const moving = (now: number, done: number): PollState => ({
    unchangedPolls: 0,
    totalSamples: 100,
    progressStart: { at: 0, done: 0 },
    progressLast: { at: now, done },
  });

  it('predicts the end from the average rate', () => {
    expect(predictedFinishIn(moving(4_000, 40), 4_000)).toBe(6_000);
    expect(predictedFinishIn(moving(9_000, 90), 9_500)).toBe(500);
  });

  it('aims the next poll just after the predicted end', () => {
    expect(nextPollDelay(moving(4_000, 40), timing, 4_000, low)).toBe(6_000);
    expect(nextPollDelay(moving(4_000, 40), timing, 4_000, high)).toBe(6_600);
  });

  it('never polls sooner than min or later than max', () => {
    expect(nextPollDelay(moving(9_900, 99), timing, 9_900, low)).toBe(1_000);
    const slow: PollState = { ...moving(1_000, 1), totalSamples: 10_000 };
    expect(nextPollDelay(slow, timing, 1_000, low)).toBe(10_000);
  });

  it('falls back to backoff when progress says nothing', () => {
    const tail = moving(10_000, 100); // every sample done, run not ended
    expect(predictedFinishIn(tail, 10_000)).toBeNull();
    const stalled = moving(4_000, 40); // predicted end (10 s) passed without an end
    expect(predictedFinishIn(stalled, 12_000)).toBeNull();
    expect(predictedFinishIn({ ...moving(4_000, 0) }, 4_000)).toBeNull(); // no movement yet
    expect(predictedFinishIn({ ...moving(4_000, 40), totalSamples: null }, 4_000)).toBeNull();
    expect(nextPollDelay({ ...tail, unchangedPolls: 1 }, timing, 10_000, high)).toBe(2_000);
  });
});

describe('baseline policies (for bench/)', () => {
  const moving: PollState = {
    unchangedPolls: 3,
    totalSamples: 100,
    progressStart: { at: 0, done: 0 },
    progressLast: { at: 4_000, done: 40 },
  };

  it('fixed polls every min interval whatever the run says', () => {
    expect(nextPollDelay(moving, { ...timing, policy: 'fixed' }, 4_000, high)).toBe(1_000);
  });

  it('exponential ignores progress and backs off', () => {
    expect(nextPollDelay(moving, { ...timing, policy: 'exponential' }, 4_000, high)).toBe(8_000);
    expect(nextPollDelay(moving, { ...timing, policy: 'adaptive' }, 4_000, low)).toBe(6_000);
  });
});
