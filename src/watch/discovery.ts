import type { Logger } from 'pino';
import type { RunList } from '../dataframer/parse-run.js';
import { isTerminalStatus } from '../dataframer/schema.js';
import { DataFramerError } from '../dataframer/errors.js';
import { noMetrics, type MetricsRecorder } from '../http/metrics.js';
import { logEvent } from '../logging.js';
import type { Store } from '../store/store.js';
import { clip } from '../util/text.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Watcher } from './watcher.js';

/** The store's key for when discovery first ran: a restart does not take older runs. */
export const DISCOVER_SINCE_KEY = 'discover_since';

export interface DiscoveryOptions {
  lister: { listRuns(): Promise<RunList> };
  watcher: Pick<Watcher, 'addRun' | 'activeRun' | 'pollSoon'>;
  store: Pick<Store, 'getMeta' | 'setMeta' | 'getRun'>;
  /** Shared with the per-run polls: the list is one more request on the same key. */
  limiter: Pick<RateLimiter, 'take'>;
  intervalMs: number;
  /**
   * A run found already finished is still taken if it ended this recently: it started and ended
   * between two lists. Shorter than the retention, so a pruned run is never taken again.
   */
  catchUpMs: number;
  /** DISCOVER_SINCE (epoch ms); else when discovery first ran, kept in the store. */
  since: number | null;
  /** DISCOVER_SPEC_IDS and DISCOVER_CREATED_BY; empty means any. */
  specIds: readonly string[];
  createdBy: readonly string[];
  logger: Logger;
  metrics?: MetricsRecorder;
  now?: () => number;
}

/**
 * Account discovery (docs/api.md): lists the account's runs every interval, one request at a
 * time, and watches each new one that was created after `since`, matches the filters and is not
 * finished (or finished only just now, between two lists). The same answer says when a watched run ended, which is then polled at once so
 * its end is seen within an interval whatever its poll spacing. A failing list changes nothing
 * but a log line per change: the per-run polling goes on.
 */
export class Discovery {
  readonly #o: DiscoveryOptions & { now: () => number; metrics: MetricsRecorder };
  readonly #specIds: ReadonlySet<string>;
  readonly #createdBy: ReadonlySet<string>;
  #since = 0;
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<void> | null = null;
  #stopped = false;
  /** The last list failed (logged once until one succeeds). */
  #failing = false;
  #invalidItems = 0;

  constructor(options: DiscoveryOptions) {
    this.#o = { now: Date.now, metrics: noMetrics, ...options };
    this.#specIds = new Set(options.specIds.map((id) => id.toLowerCase()));
    this.#createdBy = new Set(options.createdBy.map((email) => email.toLowerCase()));
  }

  start(): void {
    const stored = Number(this.#o.store.getMeta(DISCOVER_SINCE_KEY));
    this.#since = this.#o.since ?? (Number.isFinite(stored) && stored > 0 ? stored : this.#o.now());
    if (!this.#o.store.getMeta(DISCOVER_SINCE_KEY))
      this.#o.store.setMeta(DISCOVER_SINCE_KEY, String(this.#since));
    logEvent(this.#o.logger, {
      level: 'info',
      event: 'discovery.started',
      runId: null,
      msg: 'discovering new runs of the account',
      fields: { since: new Date(this.#since).toISOString(), interval_ms: this.#o.intervalMs },
    });
    this.#schedule(0);
  }

  /** Stops listing; resolves once a list in flight has been applied. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#inFlight;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#discover().finally(() => {
        this.#inFlight = null;
        this.#schedule(this.#o.intervalMs);
      });
    }, delayMs);
  }

  async #discover(): Promise<void> {
    await this.#o.limiter.take();
    if (this.#stopped) return;
    let list: RunList;
    try {
      list = await this.#o.lister.listRuns();
    } catch (error) {
      this.#failed(error);
      return;
    }
    this.#o.metrics.listFetched('ok', list.bytes);
    if (this.#failing) {
      this.#failing = false;
      logEvent(this.#o.logger, {
        level: 'info',
        event: 'discovery.recovered',
        runId: null,
        msg: 'the run list answers again',
      });
    }
    this.#reportInvalid(list.invalidItems);
    for (const run of list.runs) this.#consider(run);
  }

  #consider(run: RunList['runs'][number]): void {
    const runId = run.id.toLowerCase();
    if (this.#o.watcher.activeRun(runId)) {
      if (isTerminalStatus(run.status)) this.#o.watcher.pollSoon(runId);
      return;
    }
    const createdAt = run.created_at === undefined ? NaN : Date.parse(run.created_at);
    // A run without a creation time cannot be told from an old one: left alone.
    if (!(createdAt > this.#since)) return;
    if (isTerminalStatus(run.status)) {
      const completedAt = run.completed_at ? Date.parse(run.completed_at) : NaN;
      if (!(completedAt > this.#o.now() - this.#o.catchUpMs)) return;
    }
    if (this.#specIds.size > 0 && !this.#specIds.has(run.spec_id?.toLowerCase() ?? '')) return;
    if (this.#createdBy.size > 0 && !this.#createdBy.has(run.created_by_email?.toLowerCase() ?? ''))
      return;
    // Known already: it finished, or someone stopped watching it; either way, not taken again.
    if (this.#o.store.getRun(runId)) return;
    this.#o.watcher.addRun(runId, 'discovery');
  }

  #failed(error: unknown): void {
    const code = error instanceof DataFramerError ? error.code : 'INTERNAL';
    this.#o.metrics.listFetched(code, null);
    if (this.#failing) return;
    this.#failing = true;
    logEvent(this.#o.logger, {
      level: 'warn',
      event: 'discovery.failed',
      runId: null,
      msg: 'the run list failed; runs are still polled one by one',
      fields: {
        error: {
          code,
          message: clip(error instanceof Error ? error.message : String(error)),
        },
      },
    });
  }

  #reportInvalid(count: number): void {
    if (count === this.#invalidItems) return;
    this.#invalidItems = count;
    if (count === 0) return;
    logEvent(this.#o.logger, {
      level: 'warn',
      event: 'discovery.items_invalid',
      runId: null,
      msg: 'some items of the run list do not match the API spec; they are skipped',
      fields: { items: count },
    });
  }
}
