import type { Delivery, DeliveryState } from '../domain/delivery.js';
import type { RunRecord } from '../domain/run.js';

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
  removeRun(runId: string): void;
  /**
   * Runs newest first (by added_at, then run_id), a page at a time: `after` is the last run of
   * the previous page. Filters by whether the run finished and by its last status.
   */
  listRuns(query: RunQuery): RunRecord[];
  /** The deliveries one run owes or made, oldest first. */
  deliveriesOf(runId: string): Delivery[];
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
  /** For readiness: the store is open and answers. */
  isHealthy(): boolean;
  close(): void;
}
