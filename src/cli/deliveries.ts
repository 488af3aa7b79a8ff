import type { Store, DeliveryState } from '../store/types.js';
import { redactUrl } from '../notify/webhook-sender.js';

const STATES: readonly DeliveryState[] = ['pending', 'delivered', 'disabled', 'dead_lettered'];

export class UsageError extends Error {}

export const DELIVERIES_USAGE = [
  'usage: main.js deliveries list [--state dead_lettered|pending|delivered|disabled|all]',
  '       main.js deliveries replay <delivery-id>... | --all-dead',
].join('\n');

/**
 * `deliveries list|replay`: operator commands on the outbox. They open the state directory
 * themselves, so the watcher must be stopped (the directory lock says so otherwise); a replayed
 * delivery is sent, with its original webhook-id, when the watcher starts again.
 */
export function runDeliveriesCommand(
  args: readonly string[],
  store: Store,
  write: (line: string) => void,
  now = Date.now(),
): void {
  const [verb, ...rest] = args;
  if (verb === 'list') {
    const stateArg =
      rest[0] === '--state' ? rest[1] : rest.length === 0 ? 'dead_lettered' : undefined;
    if (
      stateArg === undefined ||
      (stateArg !== 'all' && !STATES.includes(stateArg as DeliveryState))
    )
      throw new UsageError(DELIVERIES_USAGE);
    const deliveries = store.listDeliveries(
      stateArg === 'all' ? undefined : (stateArg as DeliveryState),
    );
    for (const d of deliveries) {
      write(
        JSON.stringify({
          id: d.id,
          state: d.state,
          run_id: d.runId,
          type: d.type,
          webhook_id: d.messageId,
          receiver: redactUrl(d.receiverUrl),
          attempts: d.attempts,
          last_error: d.lastError,
          updated_at: new Date(d.updatedAt).toISOString(),
        }),
      );
    }
    return;
  }
  if (verb === 'replay') {
    const ids =
      rest[0] === '--all-dead' ? store.listDeliveries('dead_lettered').map((d) => d.id) : rest;
    if (ids.length === 0) throw new UsageError(DELIVERIES_USAGE);
    for (const id of ids) {
      const delivery = store.getDelivery(id);
      if (!delivery) throw new UsageError(`no delivery with id ${id}`);
      if (delivery.state !== 'dead_lettered')
        throw new UsageError(`delivery ${id} is ${delivery.state}, not dead_lettered`);
      store.saveDelivery({
        ...delivery,
        state: 'pending',
        attempts: 0,
        nextAttemptAt: now,
        lastError: null,
        updatedAt: now,
      });
      write(
        JSON.stringify({
          id,
          state: 'pending',
          webhook_id: delivery.messageId,
          note: 'sent when the watcher next runs',
        }),
      );
    }
    return;
  }
  throw new UsageError(DELIVERIES_USAGE);
}
