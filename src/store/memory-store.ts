import type { Delivery, DeliveryState } from '../domain/delivery.js';
import type { RunRecord } from '../domain/run.js';
import { groupByRun, type RunQuery, type Store } from './store.js';

/** A Store that lives as long as the process; for tests and for `STATE_DIR=:memory:`. */
export class MemoryStore implements Store {
  readonly #runs = new Map<string, RunRecord>();
  readonly #deliveries = new Map<string, Delivery>();
  readonly #disabled = new Set<string>();
  readonly #meta = new Map<string, string>();

  loadActiveRuns(): RunRecord[] {
    return [...this.#runs.values()]
      .filter((r) => r.finishedAt === null)
      .map((r) => structuredClone(r));
  }
  getRun(runId: string): RunRecord | undefined {
    const record = this.#runs.get(runId);
    return record && structuredClone(record);
  }
  addRun(record: RunRecord): boolean {
    if (this.#runs.has(record.runId)) return false;
    this.#runs.set(record.runId, structuredClone(record));
    return true;
  }
  saveRun(record: RunRecord): void {
    this.#runs.set(record.runId, structuredClone(record));
  }
  listRuns({ limit, after, state, status }: RunQuery): RunRecord[] {
    type Key = Pick<RunRecord, 'addedAt' | 'runId'>;
    const newestFirst = (a: Key, b: Key) =>
      b.addedAt - a.addedAt || (b.runId > a.runId ? 1 : b.runId < a.runId ? -1 : 0);
    return [...this.#runs.values()]
      .filter(
        (r) =>
          (!after || newestFirst(r, after) > 0) &&
          (state === undefined || (state === 'active') === (r.finishedAt === null)) &&
          (status === undefined || r.status === status),
      )
      .sort(newestFirst)
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }
  deliveriesOf(runId: string): Delivery[] {
    return this.deliveriesOfRuns([runId]).get(runId) ?? [];
  }
  deliveriesOfRuns(runIds: readonly string[]): Map<string, Delivery[]> {
    const wanted = new Set(runIds);
    const chosen = [...this.#deliveries.values()].filter((d) => wanted.has(d.runId));
    // Oldest first, as the SQLite store; a stable sort keeps the save order of ties.
    chosen.sort((a, b) => a.createdAt - b.createdAt);
    return groupByRun(chosen.map((d) => ({ ...d })));
  }
  finishRun(record: RunRecord, deliveries: Delivery[]): void {
    this.saveRun(record);
    for (const delivery of deliveries) this.saveDelivery(delivery);
  }
  pendingDeliveries(): Delivery[] {
    return this.listDeliveries('pending');
  }
  listDeliveries(state?: DeliveryState): Delivery[] {
    return [...this.#deliveries.values()]
      .filter((d) => state === undefined || d.state === state)
      .map((d) => ({ ...d }));
  }
  getDelivery(id: string): Delivery | undefined {
    const delivery = this.#deliveries.get(id);
    return delivery && { ...delivery };
  }
  saveDelivery(delivery: Delivery): void {
    this.#deliveries.set(delivery.id, { ...delivery });
  }
  disabledReceivers(): Set<string> {
    return new Set(this.#disabled);
  }
  disableReceiver(url: string): void {
    this.#disabled.add(url);
  }
  replayDeliveries(deliveries: Delivery[], replacedIds: readonly string[] = []): void {
    for (const id of replacedIds) this.#deliveries.delete(id);
    for (const delivery of deliveries) {
      this.saveDelivery(delivery);
      this.#disabled.delete(delivery.receiverUrl);
    }
  }
  prune(before: number, keepRunIds: ReadonlySet<string>): { runs: number; deliveries: number } {
    let deliveries = 0;
    for (const d of this.#deliveries.values()) {
      if (d.state === 'delivered' && d.updatedAt < before) {
        this.#deliveries.delete(d.id);
        deliveries += 1;
      }
    }
    const owing = new Set(
      [...this.#deliveries.values()].filter((d) => d.state !== 'delivered').map((d) => d.runId),
    );
    let runs = 0;
    for (const r of this.#runs.values()) {
      if (r.finishedAt === null || r.finishedAt >= before) continue;
      if (keepRunIds.has(r.runId) || owing.has(r.runId)) continue;
      this.#runs.delete(r.runId);
      runs += 1;
    }
    return { runs, deliveries };
  }
  getMeta(key: string): string | undefined {
    return this.#meta.get(key);
  }
  setMeta(key: string, value: string): void {
    this.#meta.set(key, value);
  }
  isHealthy(): boolean {
    return true;
  }
  close(): void {}
}
