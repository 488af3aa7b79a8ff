import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isKnownStatus } from '../dataframer/schema.js';

const PREFIX = 'dataframer_watcher_';

/** What the watcher and the delivery worker report as they work. */
export interface MetricsRecorder {
  pollCompleted(outcome: string, seconds: number): void;
  runFinished(outcome: string): void;
  deliveryAttempted(outcome: string): void;
  /** One request for the account's run list: `ok` with its size, or the error code. */
  listFetched(outcome: string, bytes: number | null): void;
}

export const noMetrics: MetricsRecorder = {
  pollCompleted: () => {},
  runFinished: () => {},
  deliveryAttempted: () => {},
  listFetched: () => {},
};

/**
 * A run status as a label value: the spec's five, or `unknown` (not answered yet, or a status
 * the spec does not list). A label's values must be a small set, and the API's statuses are
 * free strings of any length.
 */
export function statusLabel(status: string): string {
  return isKnownStatus(status) ? status : 'unknown';
}

/** What the gauges read at scrape time, so they are never stale and cost nothing between scrapes. */
export interface MetricsSources {
  runsByStatus(): Map<string, number>;
  pendingDeliveries(): number;
  oldestPendingDeliveryAt(): number | null;
  lastTickAt(): number | null;
  now(): number;
}

/**
 * Prometheus metrics on a registry of their own (no global state). Labels carry only bounded
 * values (outcomes, statuses): never a run ID, a URL or a secret. Created before the parts that
 * record into it; the gauges read their sources once `observe` has given them.
 */
export function createMetrics() {
  let sources: MetricsSources | null = null;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  // prom-client names these gauges `_total`, which promtool rejects as a counter-only suffix;
  // the handles and requests they count are of little use for this service anyway.
  for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
    registry.removeSingleMetric(`${PREFIX}nodejs_${name}`);
  }

  const outcomes = (name: string, help: string) =>
    new Counter({ name: `${PREFIX}${name}`, help, labelNames: ['outcome'], registers: [registry] });
  const polls = outcomes(
    'polls_total',
    'Polls of the DataFramer API by outcome (ok, or the error code).',
  );
  const pollSeconds = new Histogram({
    name: `${PREFIX}poll_duration_seconds`,
    help: 'Time of one poll, retries included.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const finished = outcomes('runs_finished_total', 'Runs that stopped being watched, by outcome.');
  const deliveries = outcomes('webhook_deliveries_total', 'Webhook delivery attempts by outcome.');
  const lists = outcomes(
    'list_requests_total',
    'Requests for the account run list (discovery) by outcome (ok, or the error code).',
  );
  const listBytes = new Gauge({
    name: `${PREFIX}list_bytes`,
    help: 'Size of the last run list the API answered, in bytes.',
    registers: [registry],
  });
  new Gauge({
    name: `${PREFIX}runs`,
    help: 'Runs being watched, by last seen status.',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      if (!sources) return;
      const byLabel = new Map<string, number>();
      for (const [status, count] of sources.runsByStatus()) {
        const label = statusLabel(status);
        byLabel.set(label, (byLabel.get(label) ?? 0) + count);
      }
      for (const [status, count] of byLabel) this.set({ status }, count);
    },
  });
  new Gauge({
    name: `${PREFIX}deliveries_pending`,
    help: 'Webhook deliveries owed and not yet settled.',
    registers: [registry],
    collect() {
      if (sources) this.set(sources.pendingDeliveries());
    },
  });
  new Gauge({
    name: `${PREFIX}oldest_pending_delivery_age_seconds`,
    help: 'Age of the oldest webhook delivery still owed (0 when none).',
    registers: [registry],
    collect() {
      if (!sources) return;
      const oldest = sources.oldestPendingDeliveryAt();
      this.set(oldest === null ? 0 : (sources.now() - oldest) / 1000);
    },
  });
  new Gauge({
    name: `${PREFIX}seconds_since_last_tick`,
    help: 'Seconds since the scheduler last ticked (-1 before the first tick).',
    registers: [registry],
    collect() {
      if (!sources) return;
      const last = sources.lastTickAt();
      this.set(last === null ? -1 : (sources.now() - last) / 1000);
    },
  });

  const recorder: MetricsRecorder = {
    pollCompleted: (outcome, seconds) => {
      polls.inc({ outcome });
      pollSeconds.observe(seconds);
    },
    runFinished: (outcome) => finished.inc({ outcome }),
    deliveryAttempted: (outcome) => deliveries.inc({ outcome }),
    listFetched: (outcome, bytes) => {
      lists.inc({ outcome });
      if (bytes !== null) listBytes.set(bytes);
    },
  };
  return {
    recorder,
    observe(gaugeSources: MetricsSources) {
      sources = gaugeSources;
    },
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
