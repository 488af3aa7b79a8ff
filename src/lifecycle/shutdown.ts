import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { logEvent } from '../logging.js';

export interface ShutdownParts {
  graceMs: number;
  /** Stops what starts new work (file watching, retention); called first. */
  quiet: readonly (() => void)[];
  /** Lets in-flight polls and webhook attempts finish, starting no new ones. */
  drain: () => Promise<unknown>;
  closeHttp: () => Promise<void>;
  closeStore: () => void;
  /** What is left undone, for the `watcher.stopped` line. */
  remaining: () => { runs_active: number; deliveries_pending: number };
  logger: Logger;
}

/**
 * The graceful stop, once however often it is asked for: in-flight work gets the grace less a
 * reserve for closing, so the process is gone within SHUTDOWN_GRACE_MS; a close that never
 * settles does not hold the stop either.
 */
export function gracefulStop(parts: ShutdownParts): () => Promise<void> {
  let stopping: Promise<void> | null = null;
  const stop = async () => {
    for (const quiet of parts.quiet) quiet();
    const reserveMs = Math.min(1_000, parts.graceMs / 10);
    const drained = parts.drain().then(() => 'drained' as const);
    const result = await Promise.race([
      drained,
      delay(parts.graceMs - reserveMs, 'timeout' as const, { ref: false }),
    ]);
    await Promise.race([parts.closeHttp(), delay(reserveMs / 2, undefined, { ref: false })]);
    logEvent(parts.logger, {
      level: 'info',
      event: 'watcher.stopped',
      runId: null,
      msg: 'watcher stopped',
      fields: { drained: result === 'drained', ...parts.remaining() },
    });
    parts.closeStore();
  };
  return () => (stopping ??= stop());
}
