import type { DestinationStream, Logger } from 'pino';
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import { createRunApi } from './api/run-api.js';
import { DataFramerClient, type DataFramerApi } from './dataframer/client.js';
import { createMetrics, type MetricsRecorder } from './http/metrics.js';
import { startHttpServer, type Readiness } from './http/server.js';
import { Completion } from './lifecycle/completion.js';
import { readinessCheck } from './lifecycle/readiness.js';
import { followRunList } from './lifecycle/run-list-reload.js';
import { gracefulStop } from './lifecycle/shutdown.js';
import { createLogger, logEvent } from './logging.js';
import { DeliveryWorker } from './notify/delivery-worker.js';
import { WebhookSender } from './notify/webhook-sender.js';
import { startRetention } from './store/retention.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';
import { redactUrl } from './util/http.js';
import { Discovery } from './watch/discovery.js';
import { RateLimiter } from './watch/rate-limiter.js';
import { Watcher } from './watch/watcher.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface AppDeps {
  /** Env and working directory the config was loaded from, for reloading the run list. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where log lines go (default stdout). */
  logDestination?: DestinationStream;
  /** The durable state (default the SQLite file in STATE_DIR). */
  store?: Store;
  /** How runs are read and listed (default the DataFramer API client). */
  api?: DataFramerApi;
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

/** The composition root: the one place that builds and wires every part (docs/architecture.md). */
export async function startApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const startedAt = Date.now();
  const metrics = createMetrics();
  const completion = new Completion(config.exitWhenDone);
  const logger = createAppLogger(config, deps.logDestination);
  const store = deps.store ?? SqliteStore.open(config.stateDir);
  // One limit for every request on the API key: the polls and the account list.
  const limiter = new RateLimiter(config.pollRatePerSecond);
  const dataframer = deps.api ?? createClient(config);
  const shared: Shared = { config, store, logger, metrics: metrics.recorder, completion };
  const worker = createDeliveryWorker(shared);
  const watcher = createWatcher(shared, worker, dataframer, limiter);
  const discovery = config.discoverRuns
    ? createDiscovery(shared, watcher, dataframer, limiter)
    : null;
  metrics.observe({
    runsByStatus: () => watcher.countByStatus(),
    pendingDeliveries: () => worker.pendingCount,
    oldestPendingDeliveryAt: () => worker.oldestPendingAt,
    lastTickAt: () => watcher.lastTickAt,
    now: Date.now,
  });
  const readiness = readinessCheck(watcher, store, Date.now);
  const api = config.adminToken
    ? createRunApi({ adminToken: config.adminToken, watcher, store, worker, now: Date.now })
    : undefined;
  const http = await startHttpServer(
    { readiness, metrics: metrics.render, ...(api ? { api } : {}) },
    config.httpHost,
    config.httpPort,
  ).catch((error: unknown) => {
    store.close(); // which releases the state directory's lock
    throw listenError(error, config);
  });
  const runList = followRunList({
    config,
    env: deps.env ?? process.env,
    cwd: deps.cwd ?? process.cwd(),
    watcher,
    logger,
  });

  worker.start();
  watcher.start(config.runSources);
  discovery?.start();
  // After the watcher's start: the listed runs retention keeps are known only then.
  const stopRetention = startRetention({
    store,
    retentionMs: config.retentionDays * DAY_MS,
    keepRunIds: () => watcher.listedRunIds,
    logger,
    now: Date.now,
  });
  logStarted(logger, config, http.port, watcher.activeCount, Date.now() - startedAt);
  completion.arm({ watcher, worker });

  const stop = gracefulStop({
    graceMs: config.shutdownGraceMs,
    quiet: [runList.stop, stopRetention],
    drain: () => Promise.all([watcher.stop(), worker.stop(), discovery?.stop()]),
    closeHttp: http.close,
    closeStore: () => store.close(),
    remaining: () => ({
      runs_active: watcher.activeCount,
      deliveries_pending: worker.pendingCount,
    }),
    logger,
  });
  return {
    logger,
    httpPort: http.port,
    shutdownGraceMs: config.shutdownGraceMs,
    watcher,
    done: completion.done,
    readiness,
    reloadRunList: runList.reload,
    stop,
  };
}

function createAppLogger(config: Config, destination: DestinationStream | undefined): Logger {
  return createLogger({
    level: config.logLevel,
    format: config.logFormat,
    secrets: [config.apiKey, config.webhookSecret ?? '', config.adminToken ?? ''].filter(Boolean),
    ...(destination ? { destination } : {}),
  });
}

/** What the watcher and the delivery worker are both built with. */
interface Shared {
  config: Config;
  store: Store;
  logger: Logger;
  metrics: MetricsRecorder;
  completion: Completion;
}

function createDeliveryWorker({ config, store, logger, metrics, completion }: Shared) {
  return new DeliveryWorker({
    store,
    sender: config.webhookSecret ? new WebhookSender(config.webhookSecret) : unconfiguredSender,
    receivers: config.receivers,
    defaultTimeoutMs: config.webhookTimeoutMs,
    defaultRetryScheduleMs: config.webhookRetryScheduleMs,
    logger,
    metrics,
    onIdle: () => completion.check(),
  });
}

function createClient(config: Config): DataFramerClient {
  return new DataFramerClient({
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    timeoutMs: config.requestTimeoutMs,
    maxBodyBytes: config.maxResponseBytes,
  });
}

function createWatcher(
  { config, store, logger, metrics, completion }: Shared,
  worker: DeliveryWorker,
  fetcher: DataFramerApi,
  limiter: RateLimiter,
) {
  return new Watcher({
    store,
    fetcher,
    limiter,
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
    metrics,
    onRunsChanged: () => completion.check(),
  });
}

function createDiscovery(
  { config, store, logger, metrics }: Shared,
  watcher: Watcher,
  lister: DataFramerApi,
  limiter: RateLimiter,
): Discovery {
  return new Discovery({
    lister,
    watcher,
    store,
    limiter,
    intervalMs: config.discoveryIntervalMs,
    // Three lists' worth, and well inside the retention, so a pruned run is not taken again.
    catchUpMs: Math.min(3 * config.discoveryIntervalMs, (config.retentionDays * DAY_MS) / 2),
    since: config.discoverSince === undefined ? null : Date.parse(config.discoverSince),
    specIds: config.discoverSpecIds,
    createdBy: config.discoverCreatedBy,
    logger,
    metrics,
  });
}

function logStarted(
  logger: Logger,
  config: Config,
  httpPort: number,
  runs: number,
  startupMs: number,
): void {
  logEvent(logger, {
    level: 'info',
    event: 'watcher.started',
    runId: null,
    msg: 'watcher started',
    fields: {
      http_port: httpPort,
      runs,
      receivers: config.receivers.map((r) => redactUrl(r.url)),
      base_url: redactUrl(config.baseUrl),
      poll_cron: config.pollCron,
      config_file: config.configFile,
      startup_ms: startupMs,
    },
  });
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
