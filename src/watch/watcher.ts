import type { Logger } from 'pino';
import type { RunFetcher } from '../dataframer/client.js';
import type { FieldProblem } from '../dataframer/parse-run.js';
import { DataFramerError } from '../dataframer/errors.js';
import { noMetrics, type MetricsRecorder } from '../http/metrics.js';
import { logEvent } from '../logging.js';
import {
  newRunRecord,
  storedRecord,
  type FinishType,
  type RunRecord,
  type RunSource,
} from '../domain/run.js';

import type { DeliveryWorker } from '../notify/delivery-worker.js';
import { owedDeliveries } from '../notify/webhook-body.js';
import type { Store } from '../store/store.js';
import type { PollTiming } from './poll-policy.js';
import { applyPoll, expireRun, type PollOutcome, type Transition } from './run-state.js';
import type { RateLimiter } from './rate-limiter.js';
import { Scheduler } from './scheduler.js';

/** The config's sources of runs; the others are added at run time. */
export type ConfigSource = Extract<RunSource, 'env' | 'file'>;
export type AddResult = 'added' | 'already_watched' | 'already_finished';

export interface WatcherOptions {
  store: Store;
  fetcher: RunFetcher;
  deliveries: Pick<DeliveryWorker, 'enqueue'>;
  receiverUrls: readonly string[];
  logger: Logger;
  timing: PollTiming;
  pollCron: string;
  concurrency: number;
  ratePerSecond: number;
  notFoundAfterMs: number;
  maxWatchMs: number;
  now?: () => number;
  random?: () => number;
  metrics?: MetricsRecorder;
  /** The request-rate limit shared with the other callers of the API (discovery). */
  limiter?: RateLimiter;
  /** Called after a run stops being watched, finished or removed (for exit-when-done). */
  onRunsChanged?: () => void;
}

/**
 * Keeps the list of watched runs, polls them through the scheduler, applies each outcome to the
 * run's state machine, and on a terminal state writes the run and its deliveries in one store
 * transaction before handing the deliveries to the worker.
 */
export class Watcher {
  readonly #o: Required<Omit<WatcherOptions, 'onRunsChanged' | 'limiter'>> &
    Pick<WatcherOptions, 'onRunsChanged'>;
  readonly #runs = new Map<string, RunRecord>();
  /**
   * How each run the config lists has ended, including ones that ended before a restart: the
   * exit code of EXIT_WHEN_DONE speaks of these only, not of runs added through the API.
   */
  readonly #outcomes = new Map<string, FinishType>();
  readonly #scheduler: Scheduler;
  #listed: ReadonlySet<string> = new Set();
  /** Off-spec fields already reported per run, so `run.field_invalid` comes once, not every poll. */
  readonly #reportedFields = new Map<string, Set<string>>();
  #keyRefused = false;

  constructor(options: WatcherOptions) {
    this.#o = { now: Date.now, random: Math.random, metrics: noMetrics, ...options };
    this.#scheduler = new Scheduler({
      cron: options.pollCron,
      concurrency: options.concurrency,
      ratePerSecond: options.ratePerSecond,
      now: this.#o.now,
      poll: (runId) => this.#poll(runId),
      dueRuns: (until) => this.#dueRuns(until),
      isFirstLook: (runId) => isUnseen(this.#runs.get(runId)),
      onTick: (now) => this.#expireOverdue(now),
      ...(options.limiter ? { limiter: options.limiter } : {}),
    });
  }

  /** The runs the config lists now, finished or not (retention keeps these). */
  get listedRunIds(): ReadonlySet<string> {
    return this.#listed;
  }

  get activeCount(): number {
    return this.#runs.size;
  }
  get keyRefused(): boolean {
    return this.#keyRefused;
  }
  get lastTickAt(): number | null {
    return this.#scheduler.lastTickAt;
  }
  get tickPeriodMs(): number | null {
    return this.#scheduler.tickPeriodMs;
  }
  get outcomes(): ReadonlyMap<string, FinishType> {
    return this.#outcomes;
  }
  /** Active runs by last seen status (`UNKNOWN` before the first answer). */
  countByStatus(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.#runs.values())
      counts.set(r.status ?? 'UNKNOWN', (counts.get(r.status ?? 'UNKNOWN') ?? 0) + 1);
    return counts;
  }

  /**
   * Resumes the store's unfinished runs, makes the configured runs match `configured`, and starts
   * ticking. A run the store knows as finished is not polled again.
   */
  start(configured: ReadonlyMap<string, ConfigSource>): void {
    const now = this.#o.now();
    for (const record of this.#o.store.loadActiveRuns()) {
      // After a restart most runs are overdue: spread them over the first interval, as new
      // runs are, instead of polling thousands in one burst.
      if (record.nextDueAt < now)
        record.nextDueAt = now + Math.floor(this.#o.random() * this.#o.timing.minMs);
      this.#runs.set(record.runId, record);
    }
    this.reconcile(configured);
    this.#scheduler.start();
  }

  /**
   * Makes the configured runs match the config: adds what is new, removes the runs of the env
   * and the file it no longer lists. Runs of the API and of discovery are not the config's.
   */
  reconcile(configured: ReadonlyMap<string, ConfigSource>): { added: number; removed: number } {
    const wanted = new Set(configured.keys());
    this.#listed = wanted;
    // The exit code speaks of the runs still listed only.
    for (const runId of [...this.#outcomes.keys()])
      if (!wanted.has(runId)) this.#outcomes.delete(runId);
    // Added before any is removed: a removal may be the last change EXIT_WHEN_DONE waits for,
    // and the runs the new list adds must count by then.
    let added = 0;
    for (const [runId, source] of configured)
      if (this.addRun(runId, source) === 'added') added += 1;
    let removed = 0;
    for (const record of [...this.#runs.values()]) {
      const source = configured.get(record.runId);
      if (record.source !== 'env' && record.source !== 'file') continue;
      if (source === undefined) {
        this.removeRun(record.runId);
        removed += 1;
      } else if (source !== record.source) {
        // Moved between the env and the file, or stored before sources were kept.
        record.source = source;
        this.#o.store.saveRun(record);
      }
    }
    return { added, removed };
  }

  /** Starts watching a run; a run already watched or already finished is left as it is. */
  addRun(runId: string, source: RunSource): AddResult {
    if (this.#runs.has(runId)) return 'already_watched';
    const known = this.#o.store.getRun(runId);
    if (known?.outcome) {
      if (this.#listed.has(runId)) this.#outcomes.set(runId, known.outcome);
      return 'already_finished';
    }
    const now = this.#o.now();
    // Polled at once, spread over the first interval so thousands of new runs do not burst.
    const firstDueAt = now + Math.floor(this.#o.random() * this.#o.timing.minMs);
    let record: RunRecord;
    if (!known) {
      record = newRunRecord(runId, now, firstDueAt, source);
      this.#o.store.addRun(record);
    } else if (known.finishedAt !== null) {
      // Removed earlier (see removeRun) and asked for again: watched again, by its new source.
      record = { ...known, source, finishedAt: null, nextDueAt: firstDueAt };
      this.#o.store.saveRun(record);
    } else {
      record = known;
    }
    this.#runs.set(runId, record);
    logEvent(this.#o.logger, {
      level: 'info',
      event: 'run.added',
      runId,
      msg: 'watching run',
      fields: { source: record.source },
    });
    this.#scheduler.plan(runId, record.nextDueAt);
    return 'added';
  }

  /**
   * Polls a watched run as soon as the rate allows: another source (the account list) says it
   * ended, and only the get-run answer carries what is reported (generated_files).
   */
  pollSoon(runId: string): void {
    const record = this.#runs.get(runId);
    if (!record || this.#scheduler.isBusy(runId)) return;
    this.#scheduler.cancel(runId);
    record.nextDueAt = this.#o.now();
    this.#scheduler.plan(runId, record.nextDueAt);
  }

  /** The record of a run being watched, as it is now (fresher than the store's). */
  activeRun(runId: string): RunRecord | undefined {
    return this.#runs.get(runId);
  }

  /**
   * Stops watching a run; deliveries it already owes are still made. The store keeps it as
   * stopped (finished, with no outcome) until the retention prunes it, so discovery does not
   * take it again; adding it through the config or the API watches it again. False: not watched.
   */
  removeRun(runId: string): boolean {
    const record = this.#runs.get(runId);
    if (!record) return false;
    this.#runs.delete(runId);
    this.#reportedFields.delete(runId);
    this.#scheduler.cancel(runId);
    this.#o.store.saveRun({ ...record, finishedAt: this.#o.now() });
    logEvent(this.#o.logger, {
      level: 'info',
      event: 'run.removed',
      runId,
      msg: 'run no longer watched',
    });
    this.#o.onRunsChanged?.();
    return true;
  }

  async stop(): Promise<void> {
    await this.#scheduler.stop();
  }

  *#dueRuns(until: number): Iterable<{ runId: string; dueAt: number }> {
    for (const record of this.#runs.values()) {
      if (record.nextDueAt < until) yield { runId: record.runId, dueAt: record.nextDueAt };
    }
  }

  #expireOverdue(now: number): void {
    // No poll is planned more than the max interval ahead; a run due later than that was
    // planned before the wall clock stepped back, and would otherwise wait for the step's size.
    const latest = now + this.#o.timing.maxMs;
    for (const record of [...this.#runs.values()]) {
      if (record.nextDueAt > latest) record.nextDueAt = latest;
      if (now - record.addedAt >= this.#o.maxWatchMs && !this.#scheduler.isBusy(record.runId)) {
        this.#scheduler.cancel(record.runId);
        this.#apply(expireRun(record, now));
      }
    }
  }

  async #poll(runId: string): Promise<number | null> {
    if (!this.#runs.has(runId)) return null;
    let outcome: PollOutcome;
    const startedAt = performance.now();
    try {
      const { run, invalidFields } = await this.#o.fetcher.readRun(runId);
      outcome = { ok: true, run, invalidFields: this.#notYetReported(runId, invalidFields) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    this.#o.metrics.pollCompleted(
      outcome.ok
        ? 'ok'
        : outcome.error instanceof DataFramerError
          ? outcome.error.code.toLowerCase()
          : 'internal',
      (performance.now() - startedAt) / 1000,
    );
    const record = this.#runs.get(runId);
    if (!record) return null; // removed while the request was in flight
    const transition = applyPoll(record, outcome, {
      now: this.#o.now(),
      timing: this.#o.timing,
      notFoundAfterMs: this.#o.notFoundAfterMs,
      random: this.#o.random,
    });
    this.#trackKey(transition, runId);
    return this.#apply(transition);
  }

  #notYetReported(runId: string, fields: readonly FieldProblem[]): FieldProblem[] {
    if (fields.length === 0) return [];
    let reported = this.#reportedFields.get(runId);
    if (!reported) this.#reportedFields.set(runId, (reported = new Set()));
    const fresh = fields.filter(({ field }) => !reported.has(field));
    for (const { field } of fresh) reported.add(field);
    return fresh;
  }

  /** Logs the key problem once per change, not once per poll. */
  #trackKey(transition: Transition, runId: string): void {
    if (transition.keyRefused && !this.#keyRefused) {
      this.#keyRefused = true;
      logEvent(this.#o.logger, {
        level: 'error',
        event: 'watcher.api_key_refused',
        runId,
        msg: 'DataFramer refused the API key (401/403); runs are kept and polled slowly until it is accepted',
      });
    } else if (transition.keyAccepted && this.#keyRefused) {
      this.#keyRefused = false;
      logEvent(this.#o.logger, {
        level: 'info',
        event: 'watcher.api_key_accepted',
        runId,
        msg: 'DataFramer accepts the API key again',
      });
    }
  }

  #apply(transition: Transition): number | null {
    const { record } = transition;
    // Saved first, logged after: a `run.finished` line means the end is durable.
    let next: number | null = null;
    if (transition.finish) {
      this.#finish(record, transition.finish);
    } else {
      const kept = storedRecord(record);
      this.#runs.set(record.runId, kept);
      if (transition.changed) this.#o.store.saveRun(kept);
      next = record.nextDueAt;
    }
    for (const event of transition.events) logEvent(this.#o.logger, event);
    if (transition.finish) this.#afterFinish(transition.finish);
    return next;
  }

  #finish(record: RunRecord, type: FinishType): void {
    const now = this.#o.now();
    const deliveries = owedDeliveries(record, type, this.#o.receiverUrls, now);
    this.#o.store.finishRun(storedRecord(record), deliveries);
    this.#runs.delete(record.runId);
    this.#reportedFields.delete(record.runId);
    if (this.#listed.has(record.runId)) this.#outcomes.set(record.runId, type);
    this.#o.deliveries.enqueue(deliveries);
  }

  #afterFinish(type: FinishType): void {
    this.#o.metrics.runFinished(type);
    this.#o.onRunsChanged?.();
  }
}

/** Never polled yet: no answer, and no failed attempt either. */
function isUnseen(record: RunRecord | undefined): boolean {
  return (
    record !== undefined &&
    record.lastPolledAt === null &&
    record.unchangedPolls === 0 &&
    record.notFoundCount === 0
  );
}
