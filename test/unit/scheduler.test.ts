import { describe, expect, it, jest } from '@jest/globals';
import { RateLimiter } from '../../src/watch/rate-limiter.js';
import { Scheduler, type SchedulerOptions } from '../../src/watch/scheduler.js';
import { useFakeClock } from '../helpers/fake-clock.js';

useFakeClock(0);

function setup(due: Record<string, number>, options: Partial<SchedulerOptions> = {}) {
  const polls: { runId: string; at: number }[] = [];
  const dueAt = new Map(Object.entries(due));
  const scheduler = new Scheduler({
    cron: '*/5 * * * * *',
    concurrency: 4,
    ratePerSecond: 1_000,
    poll: (runId) => {
      polls.push({ runId, at: Date.now() });
      dueAt.delete(runId);
      return Promise.resolve(null);
    },
    dueRuns: (until) =>
      [...dueAt].filter(([, at]) => at < until).map(([runId, at]) => ({ runId, dueAt: at })),
    ...options,
  });
  return { scheduler, polls, dueAt };
}

describe('Scheduler', () => {
  it('puts a first look ahead of the polls waiting for the rate limit', async () => {
    // 10 polls a second, one at a time: 20 runs due at 0 are a 2 s queue; `new` joins it at 0.5 s.
    const due = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`old-${i}`, 0]));
    const { scheduler, polls } = setup(
      { ...due, new: 500 },
      { concurrency: 1, ratePerSecond: 10, isFirstLook: (runId) => runId === 'new' },
    );
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(5_000);
    const at = polls.find((p) => p.runId === 'new')!.at;
    expect(at).toBeLessThanOrEqual(700); // the next free slot, not after the 20 queued ones
    expect(polls).toHaveLength(21);
    await scheduler.stop();
  });

  it('polls each due run at its own due time, not at the tick', async () => {
    const { scheduler, polls } = setup({ a: 0, b: 1_500, c: 4_200, later: 7_000 });
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(polls).toEqual([
      { runId: 'a', at: 0 },
      { runId: 'b', at: 1_500 },
      { runId: 'c', at: 4_200 },
    ]);
    scheduler.tick(10_000);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(polls.at(-1)).toEqual({ runId: 'later', at: 7_000 });
    await scheduler.stop();
  });

  it('re-plans a run whose next due time falls in the current window', async () => {
    let count = 0;
    const polls: number[] = [];
    const scheduler = new Scheduler({
      cron: '*/5 * * * * *',
      concurrency: 1,
      ratePerSecond: 1_000,
      poll: () => {
        polls.push(Date.now());
        count += 1;
        return Promise.resolve(count < 3 ? Date.now() + 1_000 : null);
      },
      dueRuns: () => (count === 0 ? [{ runId: 'x', dueAt: 0 }] : []),
    });
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(polls).toEqual([0, 1_000, 2_000]);
    await scheduler.stop();
  });

  it('never has two polls of one run planned or in flight', async () => {
    let release: () => void = () => {};
    let calls = 0;
    const scheduler = new Scheduler({
      cron: '*/5 * * * * *',
      concurrency: 4,
      ratePerSecond: 1_000,
      poll: () => {
        calls += 1;
        return new Promise((resolve) => (release = () => resolve(null)));
      },
      dueRuns: () => [{ runId: 'x', dueAt: 0 }],
    });
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(10);
    scheduler.tick(10_000);
    scheduler.plan('x', 0);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toBe(1);
    expect(scheduler.isBusy('x')).toBe(true);
    release();
    await scheduler.stop();
  });

  it('caps concurrent polls', async () => {
    let active = 0;
    let peak = 0;
    const due = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`r${i}`, 0]));
    const { scheduler, polls } = setup(due, {
      concurrency: 3,
      poll: async (runId) => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 100));
        active -= 1;
        polls.push({ runId, at: Date.now() });
        return null;
      },
    });
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(polls).toHaveLength(20);
    expect(peak).toBe(3);
    await scheduler.stop();
  });

  it('caps the request rate across runs', async () => {
    const due = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`r${i}`, 0]));
    const limiter = new RateLimiter(2, { burst: 2 });
    const { scheduler, polls } = setup(due, { concurrency: 10, limiter });
    scheduler.tick(60_000);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(polls).toHaveLength(10);
    // 2 at once (the burst), then one every 500 ms.
    expect(polls.map((p) => p.at)).toEqual([
      0, 0, 500, 1_000, 1_500, 2_000, 2_500, 3_000, 3_500, 4_000,
    ]);
    await scheduler.stop();
  });

  it('ticks on the cron schedule once started, and stops cleanly', async () => {
    const ticks: number[] = [];
    const { scheduler } = setup({}, { onTick: (now) => ticks.push(now) });
    scheduler.start();
    await jest.advanceTimersByTimeAsync(15_000);
    expect(ticks).toEqual([0, 5_000, 10_000, 15_000]);
    await scheduler.stop();
    await jest.advanceTimersByTimeAsync(15_000);
    expect(ticks).toHaveLength(4);
  });

  it('lets an in-flight poll finish on stop, and starts no new ones', async () => {
    const { scheduler, polls } = setup(
      { a: 0, b: 3_000 },
      {
        poll: async (runId) => {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          polls.push({ runId, at: Date.now() });
          return null;
        },
      },
    );
    scheduler.tick(5_000);
    await jest.advanceTimersByTimeAsync(10);
    const stopped = scheduler.stop();
    await jest.advanceTimersByTimeAsync(5_000);
    await stopped;
    expect(polls.map((p) => p.runId)).toEqual(['a']);
  });
});
