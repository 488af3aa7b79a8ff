/**
 * Token bucket: at most `ratePerSecond` takes per second on average, bursts up to `burst`.
 * It measures time with a monotonic clock: a wall-clock step (NTP, a VM resumed) must not make
 * it sleep for the size of the step.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  #tokens: number;
  #refilledAt: number;

  constructor(
    ratePerSecond: number,
    options: { burst?: number; now?: () => number; sleep?: (ms: number) => Promise<unknown> } = {},
  ) {
    this.#rate = ratePerSecond;
    this.#burst = options.burst ?? Math.max(1, Math.ceil(ratePerSecond));
    this.#now = options.now ?? (() => performance.now());
    // Global setTimeout (not timers/promises) so that fake timers in tests drive it.
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#tokens = this.#burst;
    this.#refilledAt = this.#now();
  }

  async take(): Promise<void> {
    for (;;) {
      const now = this.#now();
      const elapsedMs = Math.max(0, now - this.#refilledAt);
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsedMs * this.#rate) / 1000);
      this.#refilledAt = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await this.#sleep(Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
    }
  }
}
