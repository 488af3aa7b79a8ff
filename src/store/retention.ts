import type { Logger } from 'pino';
import { logEvent } from '../logging.js';
import type { Store } from './store.js';

const HOUR_MS = 60 * 60 * 1000;

export interface RetentionOptions {
  store: Pick<Store, 'prune'>;
  retentionMs: number;
  /** Runs the config still lists: kept, or they would be watched (and notified) again. */
  keepRunIds: () => ReadonlySet<string>;
  logger: Logger;
  now: () => number;
}

/**
 * Prunes what is older than the retention at start and then every hour (or every tenth of the
 * retention, when that is shorter), so the store's size follows the recent load, not the
 * watcher's age. Returns a function that stops it.
 */
export function startRetention(options: RetentionOptions): () => void {
  const prune = () => {
    const pruned = options.store.prune(options.now() - options.retentionMs, options.keepRunIds());
    if (pruned.runs + pruned.deliveries === 0) return;
    logEvent(options.logger, {
      level: 'info',
      event: 'store.pruned',
      runId: null,
      msg: 'pruned finished runs and settled deliveries past the retention',
      fields: { runs: pruned.runs, deliveries: pruned.deliveries },
    });
  };
  prune();
  const timer = setInterval(prune, Math.min(HOUR_MS, options.retentionMs / 10));
  timer.unref();
  return () => clearInterval(timer);
}
