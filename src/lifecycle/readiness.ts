import type { Readiness } from '../http/server.js';
import type { Store } from '../store/store.js';
import type { Watcher } from '../watch/watcher.js';

/** `/readyz`: the scheduler ticks, the API takes the key, and the store answers. */
export function readinessCheck(
  watcher: Pick<Watcher, 'lastTickAt' | 'tickPeriodMs' | 'keyRefused'>,
  store: Pick<Store, 'isHealthy'>,
  now: () => number,
): () => Readiness {
  return () => {
    const reasons: string[] = [];
    const lastTick = watcher.lastTickAt;
    // Three missed ticks (at least a minute) mean the scheduler is stuck, whatever POLL_CRON says.
    const staleAfterMs = Math.max(3 * (watcher.tickPeriodMs ?? 0), 60_000);
    if (lastTick === null || now() - lastTick > staleAfterMs)
      reasons.push('scheduler has not ticked recently');
    if (watcher.keyRefused) reasons.push('DataFramer API refuses the API key');
    if (!store.isHealthy()) reasons.push('state store is not available');
    return { ready: reasons.length === 0, reasons };
  };
}
