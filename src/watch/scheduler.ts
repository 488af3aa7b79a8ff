import { CronJob } from 'cron';
import { RateLimiter } from './rate-limiter.js';

export interface DueRun {
  runId: string;
  dueAt: number;
}

export interface SchedulerOptions {
  cron: string;
  concurrency: number;
  ratePerSecond: number;
  /** Polls one run; resolves to its next due time, or null when it needs no more polls. */
  poll: (runId: string) => Promise<number | null>;
  /** Runs due before `until` (epoch ms). */
  dueRuns: (until: number) => Iterable<DueRun>;
  /** Called at the start of every tick, before planning (watch timeouts, liveness). */
  onTick?: (now: number) => void;
  /**
   * A run not looked at yet: its poll goes ahead of the others waiting for the rate limit, so a
   * run added while thousands are polled is seen within a moment, not behind all of them.
   */
  isFirstLook?: (runId: string) => boolean;
  now?: () => number;
  limiter?: RateLimiter;
}

/**
 * The cron tick decides when the scheduler looks; each run has its own due time. A tick plans
 * the polls due before the next tick, each on a timer at its due time, so a poll is not
 * rounded to the tick. Dispatch is capped by concurrency and by a request-rate limiter shared
 * by all runs, and one run never has two polls planned or in flight at once.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #now: () => number;
  readonly #limiter: RateLimiter;
  readonly #planned = new Map<string, NodeJS.Timeout>();
  readonly #inFlight = new Set<string>();
  readonly #queue: string[] = [];
  readonly #firstLooks: string[] = [];
  readonly #idleWaiters: (() => void)[] = [];
  #job: CronJob | null = null;
  #windowEnd = 0;
  #stopped = false;
  #lastTickAt: number | null = null;

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#limiter = options.limiter ?? new RateLimiter(options.ratePerSecond);
  }

  get lastTickAt(): number | null {
    return this.#lastTickAt;
  }

  /** Time between two ticks of the cron expression (the first two, for irregular ones). */
  get tickPeriodMs(): number | null {
    const [first, second] = this.#job?.nextDates(2) ?? [];
    return first && second ? second.toMillis() - first.toMillis() : null;
  }

  /** Whether a poll of this run is queued or in flight. */
  isBusy(runId: string): boolean {
    return this.#inFlight.has(runId);
  }

  start(): void {
    this.#job = CronJob.from({
      cronTime: this.#options.cron,
      onTick: () => this.tick(),
      start: true,
    });
    this.tick();
  }

  /** Plans every run due before the next tick. Synchronous, so ticks cannot overlap. */
  tick(windowEnd?: number): void {
    if (this.#stopped) return;
    const now = this.#now();
    this.#lastTickAt = now;
    this.#options.onTick?.(now);
    this.#windowEnd = windowEnd ?? this.#job?.nextDate().toMillis() ?? now;
    for (const { runId, dueAt } of this.#options.dueRuns(this.#windowEnd)) this.plan(runId, dueAt);
  }

  /** Plans a poll at `dueAt` if it falls in the current tick's window; later ticks pick it up otherwise. */
  plan(runId: string, dueAt: number): void {
    if (this.#stopped || this.#planned.has(runId) || this.#inFlight.has(runId)) return;
    if (dueAt >= this.#windowEnd) return;
    const timer = setTimeout(
      () => {
        this.#planned.delete(runId);
        (this.#options.isFirstLook?.(runId) ? this.#firstLooks : this.#queue).push(runId);
        this.#inFlight.add(runId);
        this.#pump();
      },
      Math.max(0, dueAt - this.#now()),
    );
    this.#planned.set(runId, timer);
  }

  /** Forgets a planned poll (the run was removed); an in-flight one finishes. */
  cancel(runId: string): void {
    const timer = this.#planned.get(runId);
    if (timer) clearTimeout(timer);
    this.#planned.delete(runId);
  }

  #active = 0;

  #pump(): void {
    while (this.#active < this.#options.concurrency) {
      const runId = this.#firstLooks.shift() ?? this.#queue.shift();
      if (runId === undefined) return;
      this.#active += 1;
      void this.#dispatch(runId);
    }
  }

  async #dispatch(runId: string): Promise<void> {
    let nextDueAt: number | null = null;
    try {
      if (!this.#stopped) {
        await this.#limiter.take();
        if (!this.#stopped) nextDueAt = await this.#options.poll(runId);
      }
    } finally {
      this.#active -= 1;
      this.#inFlight.delete(runId);
      if (nextDueAt !== null) this.plan(runId, nextDueAt);
      this.#pump();
      if (this.#active === 0) this.#idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }

  /** Stops ticking and planning; resolves when in-flight polls have finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#job?.stop();
    for (const timer of this.#planned.values()) clearTimeout(timer);
    this.#planned.clear();
    for (const runId of [...this.#firstLooks.splice(0), ...this.#queue.splice(0)])
      this.#inFlight.delete(runId);
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }
}
