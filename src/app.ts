import { setTimeout as delay } from 'node:timers/promises';
import type { DestinationStream, Logger } from 'pino';
import type { Config } from './config/schema.js';
import { DataFramerClient, type RunFetcher } from './dataframer/client.js';
import { createMetrics } from './http/metrics.js';
import { startHttpServer, type Readiness } from './http/server.js';
import { createLogger, logEvent } from './logging.js';
import { DeliveryWorker } from './notify/delivery-worker.js';
import { WebhookSender, redactUrl } from './notify/webhook-sender.js';
import { startRetention } from './store/retention.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/types.js';
import { ConfigError, loadConfig } from './config/load.js';
import { watchConfigFile } from './config/watch-file.js';
import { Watcher } from './watch/watcher.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface AppDeps {
  /** Env and working directory the config was loaded from, for reloading the run list. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logDestination?: DestinationStream;
  store?: Store;
  fetcher?: RunFetcher;
  now?: () => number;
}

export interface App {
  readonly logger: Logger;
  readonly httpPort: number;
  /** How long stop() may take before it gives up on in-flight work. */
  readonly shutdownGraceMs: number;
  readonly watcher: Watcher;
  /** With exitWhenDone: resolves to the exit code once every run ended and every webhook settled. */
  readonly done: Promise<number>;
  readiness(): Readiness;
  /** Re-reads the config and applies its run list; a bad config is logged and changes nothing. */
  reloadRunList(reason: string): void;
  /** Graceful stop: no new polls or attempts, in-flight ones finish within the grace period. */
  stop(): Promise<void>;
}

/** The composition root: the one place that builds and wires every part. */
export async function startApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const now = deps.now ?? Date.now;
  const secrets = [config.apiKey, config.webhookSecret ?? ''].filter(Boolean);
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    secrets,
    ...(deps.logDestination ? { destination: deps.logDestination } : {}),
  });
  const store = deps.store ?? SqliteStore.open(config.stateDir);
  const fetcher =
    deps.fetcher ??
    new DataFramerClient({
      baseUrl: config.baseUrl,
      apiKey: config.apiKey,
      timeoutMs: config.requestTimeoutMs,
      maxBodyBytes: config.maxResponseBytes,
      now,
    });

  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  // Settled when no run is watched and nothing is owed to a receiver.
  const metrics = createMetrics({
    runsByStatus: () => watcher.countByStatus(),
    pendingDeliveries: () => worker.pendingCount,
    oldestPendingDeliveryAt: () => worker.oldestPendingAt,
    lastTickAt: () => watcher.lastTickAt,
    now,
  });

  let started = false;
  const checkDone = () => {
    if (!started || !config.exitWhenDone || watcher.activeCount > 0 || worker.pendingCount > 0)
      return;
    const allSucceeded = [...watcher.outcomes.values()].every((type) => type === 'run.succeeded');
    resolveDone(allSucceeded ? 0 : 1);
  };

  const worker = new DeliveryWorker({
    store,
    sender: config.webhookSecret
      ? new WebhookSender(config.webhookSecret, { now })
      : unconfiguredSender,
    receivers: config.receivers,
    defaultTimeoutMs: config.webhookTimeoutMs,
    defaultRetryScheduleMs: config.webhookRetryScheduleMs,
    logger,
    now,
    metrics: metrics.recorder,
    onIdle: checkDone,
  });
  const watcher = new Watcher({
    store,
    fetcher,
    deliveries: worker,
    receiverUrls: config.receivers.map((r) => r.url),
    logger,
    timing: {
      minMs: config.pollMinIntervalMs,
      maxMs: config.pollMaxIntervalMs,
      policy: config.pollPolicy,
    },
    pollCron: config.pollCron,
    concurrency: config.pollConcurrency,
    ratePerSecond: config.pollRatePerSecond,
    notFoundAfterMs: config.notFoundAfterMs,
    maxWatchMs: config.maxWatchMs,
    now,
    metrics: metrics.recorder,
    onRunFinished: () => checkDone(),
  });

  const startedAt = now();
  const readiness = (): Readiness => {
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
  const http = await startHttpServer(
    { readiness, metrics: metrics.render },
    config.httpHost,
    config.httpPort,
  ).catch((error: unknown) => {
    // Nothing is left behind: closing the store releases the state directory's lock.
    store.close();
    throw listenError(error, config);
  });

  const reloadRunList = (reason: string) => {
    try {
      // The file read at start must still be there: a moment without it (a deploy moving it,
      // a config map being swapped) is a failed reload, never an empty run list.
      const next = loadConfig(deps.env ?? process.env, deps.cwd ?? process.cwd(), {
        requireFile: config.configFile,
      });
      const { added, removed } = watcher.reconcile(next.watchRunIds);
      checkDone();
      logEvent(logger, {
        level: 'info',
        event: 'config.reloaded',
        runId: null,
        msg: 'run list reloaded',
        fields: { reason, added, removed, runs: watcher.activeCount },
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      logEvent(logger, {
        level: 'error',
        event: 'config.reload_failed',
        runId: null,
        msg: 'config reload rejected; the run list is unchanged',
        fields: {
          reason,
          setting: error.setting,
          problem: error.problem.replace(/\s*\n\s*/g, ' '),
        },
      });
    }
  };
  const stopWatchingFile = config.configFile
    ? watchConfigFile(config.configFile, () => reloadRunList('file changed'))
    : () => {};

  worker.start();
  watcher.start(config.watchRunIds);
  // After start: the listed runs it keeps are known only once the watcher has its list.
  const stopRetention = startRetention({
    store,
    retentionMs: config.retentionDays * DAY_MS,
    keepRunIds: () => watcher.listedRunIds,
    logger,
    now,
  });
  logEvent(logger, {
    level: 'info',
    event: 'watcher.started',
    runId: null,
    msg: 'watcher started',
    fields: {
      http_port: http.port,
      runs: watcher.activeCount,
      receivers: config.receivers.map((r) => redactUrl(r.url)),
      base_url: redactUrl(config.baseUrl),
      poll_cron: config.pollCron,
      config_file: config.configFile,
      startup_ms: now() - startedAt,
    },
  });
  started = true;
  checkDone();

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      stopWatchingFile();
      stopRetention();
      // In-flight work gets the grace less a reserve for closing, so the process is gone
      // within SHUTDOWN_GRACE_MS; a close that never settles does not hold the stop either.
      const reserveMs = Math.min(1_000, config.shutdownGraceMs / 10);
      const drained = Promise.all([watcher.stop(), worker.stop()]).then(() => 'drained' as const);
      const result = await Promise.race([
        drained,
        delay(config.shutdownGraceMs - reserveMs, 'timeout' as const, { ref: false }),
      ]);
      await Promise.race([http.close(), delay(reserveMs / 2, undefined, { ref: false })]);
      logEvent(logger, {
        level: 'info',
        event: 'watcher.stopped',
        runId: null,
        msg: 'watcher stopped',
        fields: {
          drained: result === 'drained',
          runs_active: watcher.activeCount,
          deliveries_pending: worker.pendingCount,
        },
      });
      store.close();
    })());

  return {
    logger,
    httpPort: http.port,
    shutdownGraceMs: config.shutdownGraceMs,
    watcher,
    done,
    readiness,
    reloadRunList,
    stop,
  };
}

/** A port taken or not allowed is the operator's to fix: a configuration error (exit 78). */
function listenError(error: unknown, config: Config): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
    return new ConfigError(
      'HTTP_PORT',
      `cannot listen on ${config.httpHost}:${config.httpPort} (${code}); choose another HTTP_PORT or HTTP_HOST`,
    );
  return error;
}

/** With no receivers configured there is nothing to sign; deliveries are never created. */
const unconfiguredSender = {
  send: () => Promise.reject(new Error('no webhook secret configured')),
};
