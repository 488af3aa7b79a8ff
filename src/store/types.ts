import type { Run } from '../dataframer/schema.js';
import type { FinishType } from '../notify/payload.js';

export interface ProgressPoint {
  /** Epoch ms of the poll that saw it. */
  at: number;
  /** samples_completed + samples_failed. */
  done: number;
  /**
   * When the count may have changed: the last poll that still saw the previous count, if one
   * saw it unchanged (a plateau), else `at`. Progress reported in batches changed somewhere in
   * (after, at]; progress that moved at every look is taken as current at `at`.
   */
  after: number;
}

/** Everything the watcher knows of one run; plain data so any store can keep it. */
export interface RunRecord {
  runId: string;
  addedAt: number;
  /** Last status seen, null before the first successful poll. */
  status: string | null;
  snapshot: Run | null;
  nextDueAt: number;
  /** Epoch ms of the latest poll with an answer (saved with the next change, not every poll). */
  lastPolledAt: number | null;
  /** Polls in a row that saw neither a new status nor new progress. */
  unchangedPolls: number;
  notFoundCount: number;
  /** Epoch ms of the first 404 of the current stretch of 404s; null once the run answers. */
  notFoundSince: number | null;
  /** First and latest progress seen while the run moved; their slope predicts the end. */
  progressStart: ProgressPoint | null;
  progressLast: ProgressPoint | null;
  /**
   * The first change of progress seen after progressStart. A first look can land anywhere in a
   * step of progress reported in batches; a change cannot, so once a second change is seen the
   * rate is measured from this point.
   */
  progressChange: ProgressPoint | null;
  /** A look found the count unchanged while the run moved: progress comes in batches. */
  progressBatched: boolean;
  finishedAt: number | null;
  outcome: FinishType | null;
}

export type DeliveryState = 'pending' | 'delivered' | 'disabled' | 'dead_lettered';

/** One webhook message owed to one receiver (a row of the outbox). */
export interface Delivery {
  id: string;
  /** The Standard Webhooks `webhook-id`: the same for every receiver and every attempt. */
  messageId: string;
  runId: string;
  type: FinishType;
  receiverUrl: string;
  /** The exact JSON body, fixed when the run finished so that retries are byte-identical. */
  body: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
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
