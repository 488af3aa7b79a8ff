import type { DeliveryWorker } from '../notify/delivery-worker.js';
import type { Watcher } from '../watch/watcher.js';

interface Work {
  watcher: Pick<Watcher, 'activeCount' | 'outcomes'>;
  worker: Pick<DeliveryWorker, 'pendingCount'>;
}

/**
 * EXIT_WHEN_DONE: `done` resolves to the exit code (0 when every run succeeded, else 1) once no
 * run is watched and nothing is owed to a receiver. `check` is called whenever that may have
 * become true; it does nothing until the start is over and the work is known.
 */
export class Completion {
  readonly done: Promise<number>;
  #resolve: (code: number) => void = () => {};
  readonly #enabled: boolean;
  #work: Work | null = null;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
    this.done = new Promise<number>((resolve) => (this.#resolve = resolve));
  }

  /** From now on the work counts: called once every part has started. */
  arm(work: Work): void {
    this.#work = work;
    this.check();
  }

  check(): void {
    const work = this.#work;
    if (!this.#enabled || !work || work.watcher.activeCount > 0 || work.worker.pendingCount > 0)
      return;
    const outcomes = [...work.watcher.outcomes.values()];
    this.#resolve(outcomes.every((type) => type === 'run.succeeded') ? 0 : 1);
  }
}
