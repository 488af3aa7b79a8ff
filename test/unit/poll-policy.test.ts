import { describe, expect, it } from '@jest/globals';
import { Run } from '../../src/dataframer/schema.js';
import { mulberry32 } from '../../src/demo/random.js';
import {
  jumpLooksBatched,
  nextPollDelay,
  predictedEndWindow,
  type PollState,
} from '../../src/watch/poll-policy.js';
import type { PollPolicy } from '../../src/config/schema.js';
import { NO_PROGRESS, newRunRecord } from '../../src/domain/run.js';
import { applyPoll } from '../../src/watch/run-state.js';
import { runBody } from '../helpers/run-body.js';

const timing = { minMs: 1_000, maxMs: 10_000 };
const idle: PollState = {
  unchangedPolls: 0,
  totalSamples: null,
  progress: NO_PROGRESS,
  watchedMs: 0,
};
const low = () => 0;
const high = () => 0.999_999;

describe('nextPollDelay without a sample count: exponential backoff with full jitter', () => {
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

describe('progress-aware polling, one decision at a time', () => {
  // A synthetic timeline: 100 samples, 10 per second from t=0, seen moving at every look.
  const moving = (now: number, done: number): PollState => ({
    unchangedPolls: 0,
    totalSamples: 100,
    progress: {
      start: { at: 0, done: 0, after: 0 },
      last: { at: now, done, after: now },
      change: null,
      batched: false,
    },
    watchedMs: now,
  });

  it('predicts a window for the end from the rate, as wide as whole-sample rounding', () => {
    // 60 samples left at 100 ms: 6 s; the last count is up to one sample old (100 ms) and the
    // slope is off by half of 6 s / 40 samples gained (75 ms) either way.
    expect(predictedEndWindow(moving(4_000, 40))).toEqual({ start: 9_825, end: 10_075 });
  });

  it('places a batched change between the look before it and the look that saw it', () => {
    const base = moving(4_000, 40);
    const batched: PollState = {
      ...base,
      progress: { ...base.progress, last: { at: 4_000, done: 40, after: 2_000 } },
    };
    expect(predictedEndWindow(batched)).toEqual({ start: 7_925, end: 10_075 });
  });

  it('measures the rate from the first change once a later one exists', () => {
    // The first look (0 at 0 s) may sit anywhere in a step; 20 at 3 s to 40 at 5 s: 100 ms each.
    const base = moving(5_000, 40);
    const stepped: PollState = {
      ...base,
      progress: { ...base.progress, change: { at: 3_000, done: 20, after: 3_000 } },
    };
    expect(predictedEndWindow(stepped)?.end).toBe(11_150);
    // With only one change, the first look is all there is: 125 ms per sample.
    expect(predictedEndWindow(moving(5_000, 40))?.end).toBe(12_593.75);
  });

  it('looks rarely while the run is PENDING: it cannot end before it has processed', () => {
    const pending: PollState = { ...idle, totalSamples: 100 };
    expect(nextPollDelay(pending, timing, 0, low)).toBe(9_000);
    expect(nextPollDelay(pending, timing, 0, high)).toBe(10_000);
  });

  it('measures the rate soon after the run starts moving, then backs off if it does not', () => {
    const base = moving(3_000, 0);
    const started: PollState = {
      ...base,
      progress: { ...base.progress, start: { at: 3_000, done: 0, after: 3_000 } },
    };
    expect(nextPollDelay(started, timing, 3_000, high)).toBe(2_000);
    // Unchanged since: wait as long as it has been seen processing (3 s).
    expect(nextPollDelay({ ...started, unchangedPolls: 1 }, timing, 6_000, high)).toBe(3_000);
    expect(nextPollDelay({ ...started, unchangedPolls: 3 }, timing, 60_000, high)).toBe(10_000);
  });

  it('aims at a sharp window within max, jittered early (never late) so that runs spread out', () => {
    // The window opens 5,825 ms after the look and is 250 ms wide.
    expect(nextPollDelay(moving(4_000, 40), timing, 4_000, low)).toBe(5_825);
    expect(nextPollDelay(moving(4_000, 40), timing, 4_000, high)).toBe(4_660);
  });

  it('approaches a wide or far window part of the way, aims once it is near', () => {
    // 2 samples of 1,000 in 1 s: 499 s away; capped at max.
    const far: PollState = { ...moving(1_000, 2), totalSamples: 1_000 };
    expect(nextPollDelay(far, timing, 1_000, low)).toBe(10_000);
    // 4 of 10 samples in 4 s: the window is [8,250, 10,750], too wide to aim at from 4,250 ms
    // away: 85% of the way.
    const vague: PollState = { ...moving(4_000, 4), totalSamples: 10 };
    expect(predictedEndWindow(vague)).toEqual({ start: 8_250, end: 10_750 });
    expect(nextPollDelay(vague, timing, 4_000, low)).toBe(3_613);
    // Within 3 min intervals of its start: aim.
    expect(nextPollDelay(vague, timing, 6_000, low)).toBe(2_250);
  });

  it('looks every 1.46-1.55 min intervals inside the window', () => {
    expect(nextPollDelay(moving(4_000, 40), timing, 9_900, low)).toBe(1_457);
    expect(nextPollDelay(moving(4_000, 40), timing, 10_000, high)).toBe(1_550);
  });

  it('never polls sooner than min or later than max', () => {
    // The window opens 894 ms after this look.
    expect(nextPollDelay(moving(9_000, 90), timing, 9_000, low)).toBe(1_000);
    const slow: PollState = { ...moving(1_000, 1), totalSamples: 10_000 };
    expect(nextPollDelay(slow, timing, 1_000, low)).toBe(10_000);
  });

  it('treats every sample done as an imminent end: looks every 1.46-1.55 min intervals', () => {
    const complete = moving(10_000, 100);
    expect(predictedEndWindow(complete)).toBeNull();
    expect(nextPollDelay({ ...complete, unchangedPolls: 5 }, timing, 20_000, low)).toBe(1_457);
    expect(nextPollDelay({ ...complete, unchangedPolls: 5 }, timing, 20_000, high)).toBe(1_550);
  });

  it('backs off once every sample has been done for long: a tenth of that time, up to max', () => {
    const complete = moving(10_000, 100);
    expect(nextPollDelay(complete, timing, 25_000, high)).toBe(1_550);
    expect(nextPollDelay(complete, timing, 50_000, high)).toBe(4_000);
    expect(nextPollDelay(complete, timing, 3_600_000, high)).toBe(10_000);
  });

  it('once the window has passed, waits half as long as it is overdue', () => {
    const stalled = moving(4_000, 40); // the window ends at 10,075
    expect(nextPollDelay(stalled, timing, 10_500, high)).toBe(1_000);
    expect(nextPollDelay(stalled, timing, 16_075, high)).toBe(3_000);
    expect(nextPollDelay(stalled, timing, 60_000, high)).toBe(10_000);
  });

  it('says nothing without movement or a sample count', () => {
    expect(predictedEndWindow(moving(4_000, 0))).toBeNull();
    expect(predictedEndWindow({ ...moving(4_000, 40), totalSamples: null })).toBeNull();
  });
});

describe('batched progress without a plateau look', () => {
  const anchor = { at: 0, done: 0, after: 0 };
  const last = { at: 4_000, done: 40, after: 4_000 }; // 10 samples a second

  it('is told by a jump the measured rate cannot explain, either way', () => {
    // 2 s later the rate gives 20; a whole step of 40 (or a lone 5) is no steady flow.
    expect(jumpLooksBatched(anchor, last, 80, 6_000)).toBe(true);
    expect(jumpLooksBatched(anchor, last, 45, 6_000)).toBe(true);
  });

  it('is not told by a jump within 1.5x of the rate, or by one sample of rounding', () => {
    expect(jumpLooksBatched(anchor, last, 60, 6_000)).toBe(false);
    expect(jumpLooksBatched(anchor, last, 69, 6_000)).toBe(false);
    expect(jumpLooksBatched(anchor, last, 42, 4_100)).toBe(false); // 1 expected, 2 seen
    // No rate yet: nothing to compare with.
    expect(jumpLooksBatched(last, last, 80, 6_000)).toBe(false);
  });
});

describe('baseline policies (for bench/)', () => {
  const moving: PollState = {
    unchangedPolls: 0,
    totalSamples: 100,
    progress: {
      start: { at: 0, done: 0, after: 0 },
      last: { at: 4_000, done: 40, after: 4_000 },
      change: null,
      batched: false,
    },
    watchedMs: 4_000,
  };

  it('fixed polls every min interval whatever the run says', () => {
    expect(nextPollDelay(moving, { ...timing, policy: 'fixed' }, 4_000, high)).toBe(1_000);
  });

  it('exponential ignores progress: full jitter up to the time watched, within [min, max]', () => {
    const exponential = { ...timing, policy: 'exponential' as const };
    expect(nextPollDelay(moving, exponential, 4_000, high)).toBe(4_000);
    expect(nextPollDelay(moving, exponential, 4_000, low)).toBe(1_000);
    expect(nextPollDelay({ ...moving, watchedMs: 300 }, exponential, 300, high)).toBe(1_000);
    expect(nextPollDelay({ ...moving, watchedMs: 60_000 }, exponential, 0, high)).toBe(10_000);
    expect(nextPollDelay(moving, { ...timing, policy: 'adaptive' }, 4_000, low)).toBe(5_825);
  });
});

/** What a synthetic run says at `t` ms after it was created (and added). */
type Timeline = (t: number) => { status: string; done: number };

interface Watched {
  /** Times of every poll, the last one the first to see the end. */
  polls: number[];
  /** Delays chosen after each poll. */
  delays: number[];
  /** Last poll minus the end. */
  detectionMs: number;
}

/**
 * Watches a synthetic run the way the watcher does: the real state machine (run-state.ts)
 * keeps the progress points and asks the policy for each delay; 3 ms of network per poll.
 */
function watch(timeline: Timeline, endAt: number, total: number, policy?: PollPolicy): Watched {
  const random = mulberry32(7);
  const ctx = (now: number) => ({
    now,
    timing: { ...timing, ...(policy ? { policy } : {}) },
    notFoundAfterMs: 60_000,
    random,
  });
  let record = newRunRecord('3c90c3cc-0d44-4b50-8888-8dd25736052a', 0, 400);
  const polls: number[] = [];
  const delays: number[] = [];
  let t = record.nextDueAt;
  for (;;) {
    polls.push(t);
    const { status, done } = timeline(t);
    const run = Run.parse(
      runBody({
        status,
        samples_completed: done,
        samples_failed: 0,
        runtime_params: { number_of_samples: total },
      }),
    );
    const transition = applyPoll(record, { ok: true, run }, ctx(t));
    if (transition.finish) return { polls, delays, detectionMs: t - endAt };
    record = transition.record;
    delays.push(record.nextDueAt - t);
    t = record.nextDueAt + 3;
    if (polls.length > 500) throw new Error('never saw the end');
  }
}

/** PENDING for `pendingMs`, then PROCESSING for `processingMs` shaped by `share`, then SUCCEEDED. */
function run(
  pendingMs: number,
  processingMs: number,
  total: number,
  share: (x: number) => number,
): Timeline {
  return (t) => {
    if (t < pendingMs) return { status: 'PENDING', done: 0 };
    if (t >= pendingMs + processingMs) return { status: 'SUCCEEDED', done: total };
    return {
      status: 'PROCESSING',
      done: Math.floor(total * share((t - pendingMs) / processingMs)),
    };
  };
}

const linear = (x: number) => x;
const tail = (x: number) => Math.min(1, x / 0.7);
const steps = (x: number) => Math.floor(x * 5) / 5;

describe('synthetic timelines: a run watched from creation to its end', () => {
  it('linear progress: a quarter of fixed 1 s polling, the end seen within 1.5 s', () => {
    const adaptive = watch(run(5_000, 30_000, 500, linear), 35_000, 500);
    const fixed = watch(run(5_000, 30_000, 500, linear), 35_000, 500, 'fixed');
    expect(adaptive.detectionMs).toBeGreaterThanOrEqual(0);
    expect(adaptive.detectionMs).toBeLessThanOrEqual(1_500);
    expect(adaptive.polls.length).toBeLessThanOrEqual(fixed.polls.length / 4);
  });

  it('a tail at 100%: looks every 1.46-1.55 s once every sample is done, so the end is seen within 1.55 s', () => {
    const watched = watch(run(4_000, 40_000, 200, tail), 44_000, 200);
    const complete = 4_000 + 0.7 * 40_000;
    const afterComplete = watched.delays.filter((_, i) => (watched.polls[i] ?? 0) > complete + 1);
    expect(afterComplete.length).toBeGreaterThan(0);
    for (const delay of afterComplete) expect(delay).toBeLessThanOrEqual(1_550);
    expect(watched.detectionMs).toBeLessThanOrEqual(1_550);
  });

  // A step every 5 s is caught by a jump the rate cannot explain; one every 10 s by the look
  // 2 s after the first, which finds 0% still. Either way later steps are placed between two
  // looks, and the end window starts early enough.
  it.each([25_000, 50_000])(
    'progress in steps over %i ms: the end is seen within 1.5 s, with under a third of fixed polling',
    (processingMs) => {
      const timeline = run(3_000, processingMs, 100, steps);
      const adaptive = watch(timeline, 3_000 + processingMs, 100);
      const fixed = watch(timeline, 3_000 + processingMs, 100, 'fixed');
      expect(adaptive.detectionMs).toBeGreaterThanOrEqual(0);
      expect(adaptive.detectionMs).toBeLessThanOrEqual(1_500);
      expect(adaptive.polls.length).toBeLessThan(fixed.polls.length / 3);
    },
  );

  it('a stall: once the predicted end has long passed, the spacing backs off to max', () => {
    // Half the samples in 10 s, then nothing for 10 minutes.
    const stalled: Timeline = (t) =>
      t >= 600_000
        ? { status: 'FAILED', done: 50 }
        : { status: 'PROCESSING', done: Math.floor(Math.min(t, 10_000) / 200) };
    const watched = watch(stalled, 600_000, 100);
    expect(watched.delays.slice(-10)).toEqual(Array(10).fill(timing.maxMs));
    expect(watched.detectionMs).toBeLessThanOrEqual(timing.maxMs);
  });

  it('a run that stays PENDING is looked at every 9-10 s', () => {
    const queued: Timeline = (t) =>
      t >= 120_000 ? { status: 'CANCELED', done: 0 } : { status: 'PENDING', done: 0 };
    const watched = watch(queued, 120_000, 100);
    for (const delay of watched.delays) {
      expect(delay).toBeGreaterThanOrEqual(9_000);
      expect(delay).toBeLessThanOrEqual(10_000);
    }
  });

  it('an end before the predicted one (a cancel) is still seen, within max', () => {
    // At the rate of a 40 s run, canceled after 15 s.
    const canceled: Timeline = (t) =>
      t >= 15_000
        ? { status: 'CANCELED', done: 37 }
        : { status: 'PROCESSING', done: Math.floor(t / 400) };
    const watched = watch(canceled, 15_000, 100);
    expect(watched.detectionMs).toBeGreaterThanOrEqual(0);
    expect(watched.detectionMs).toBeLessThanOrEqual(timing.maxMs);
  });

  it('every delay stays within [min, max] on many random timelines', () => {
    const random = mulberry32(99);
    for (let i = 0; i < 200; i++) {
      const pendingMs = Math.floor(random() * 15_000);
      const processingMs = 5_000 + Math.floor(random() * 60_000);
      const total = [1, 10, 100, 1_000][i % 4] ?? 10;
      const shape = [linear, tail, steps][i % 3] ?? linear;
      const watched = watch(
        run(pendingMs, processingMs, total, shape),
        pendingMs + processingMs,
        total,
      );
      for (const delay of watched.delays) {
        expect(delay).toBeGreaterThanOrEqual(timing.minMs);
        expect(delay).toBeLessThanOrEqual(timing.maxMs);
      }
      expect(watched.detectionMs).toBeGreaterThanOrEqual(0);
    }
  });
});
