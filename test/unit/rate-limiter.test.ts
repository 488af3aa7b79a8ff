import { describe, expect, it, jest } from '@jest/globals';
import { RateLimiter } from '../../src/watch/rate-limiter.js';
import { useFakeClock } from '../helpers/fake-clock.js';

useFakeClock(Date.parse('2026-12-02T12:00:00Z'));

/** How many takes complete within `ms` of fake time. */
async function takesWithin(limiter: RateLimiter, count: number, ms: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < count; i += 1) void limiter.take().then(() => (done += 1));
  await jest.advanceTimersByTimeAsync(ms);
  return done;
}

describe('RateLimiter', () => {
  it('lets a burst through, then one take per 1/rate seconds', async () => {
    const limiter = new RateLimiter(2, { burst: 2 });
    let done = 0;
    for (let i = 0; i < 6; i += 1) void limiter.take().then(() => (done += 1));
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(2);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(done).toBe(4);
  });

  it('is not stalled by a backward step of the wall clock', async () => {
    const limiter = new RateLimiter(2, { burst: 2 });
    expect(await takesWithin(limiter, 2, 0)).toBe(2);
    // NTP or a resumed VM sets the wall clock back an hour; monotonic time goes on.
    jest.setSystemTime(Date.now() - 3_600_000);
    expect(await takesWithin(limiter, 2, 1_000)).toBe(2);
  });
});
