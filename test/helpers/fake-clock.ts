import { afterEach, beforeEach, jest } from '@jest/globals';

/** Jest's fake timers for every test of the file, the clock starting at `now` (epoch ms). */
export function useFakeClock(now: number): void {
  beforeEach(() => {
    jest.useFakeTimers({ now });
  });
  afterEach(() => {
    jest.useRealTimers();
  });
}
