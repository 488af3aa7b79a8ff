import type { Delivery, DeliveryState } from '../domain/delivery.js';
import type { RunRecord } from '../domain/run.js';

/** Deliveries by the run they belong to, each run's in the order given. */
export function groupByRun(deliveries: Iterable<Delivery>): Map<string, Delivery[]> {
  const byRun = new Map<string, Delivery[]>();
  for (const d of deliveries) {
    const list = byRun.get(d.runId);
    if (list) list.push(d);
    else byRun.set(d.runId, [d]);
  }
  return byRun;
}

export interface RunQuery {
  limit: number;
  after?: { addedAt: number; runId: string };
  state?: 'active' | 'finished';
  status?: string;
}

/**
 * Durable state. Implementations must make `finishRun` atomic: the run's terminal state and the
 * deliveries it owes are written together or not at all (the outbox pattern).
 */
export interface Store {
  /** Runs not yet finished, for resuming after a restart. */
  loadActiveRuns(): RunRecord[];
  getRun(runId: string): RunRecord | undefined;
  /** Inserts a new run; false when the run is already known (watched or finished). */
  addRun(record: RunRecord): boolean;
  saveRun(record: RunRecord): void;
  /**
   * Runs newest first (by added_at, then run_id), a page at a time: `after` is the last run of
   * the previous page. Filters by whether the run finished and by its last status.
   */
  listRuns(query: RunQuery): RunRecord[];
  /** The deliveries one run owes or made, oldest first. */
  deliveriesOf(runId: string): Delivery[];
  /** The same for a page of runs in one read, by run ID (runs without any are left out). */
  deliveriesOfRuns(runIds: readonly string[]): Map<string, Delivery[]>;
  finishRun(record: RunRecord, deliveries: Delivery[]): void;
  pendingDeliveries(): Delivery[];
  listDeliveries(state?: DeliveryState): Delivery[];
  getDelivery(id: string): Delivery | undefined;
  saveDelivery(delivery: Delivery): void;
  disabledReceivers(): Set<string>;
  disableReceiver(url: string, at: number): void;
  /**
   * Saves replayed deliveries, deletes the ones they replace (moved to another receiver, so
   * under another id), and re-enables their receivers, all or nothing: an operator's replay of
   * several deliveries never half-applies.
   */
  replayDeliveries(deliveries: Delivery[], replacedIds?: readonly string[]): void;
  /**
   * Retention: deletes delivered deliveries last updated before `before`, and runs finished
   * before it whose every delivery was delivered and that are not in `keepRunIds` (a run still
   * listed in the config would otherwise be watched, and notified, again). Deliveries not yet
   * delivered (pending, dead-lettered, disabled) are kept, whatever their age, for replay.
   */
  prune(before: number, keepRunIds: ReadonlySet<string>): { runs: number; deliveries: number };
  /** A small fact of the watcher's own (docs/api.md: when discovery began), or undefined. */
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  /** For readiness: the store is open and answers. */
  isHealthy(): boolean;
  close(): void;
}
