import {
  DELIVERY_STATES,
  deliveryIdFor,
  type Delivery,
  type DeliveryState,
} from '../domain/delivery.js';
import type { Store } from '../store/store.js';
import { HttpUrl } from '../config/schema.js';
import { REPLAYABLE, replayed } from '../notify/replay.js';
import { redactUrl } from '../util/http.js';

export class UsageError extends Error {}

export const DELIVERIES_USAGE = [
  'usage: main.js deliveries list [--state dead_lettered|pending|delivered|disabled|all]',
  '       main.js deliveries replay (<delivery-id>... | --all-dead | --all) [--to <url>]',
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
      (stateArg !== 'all' && !(DELIVERY_STATES as readonly string[]).includes(stateArg))
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
    const replayed = replayDeliveries(parseReplayArgs(rest), store, now);
    for (const d of replayed) {
      write(
        JSON.stringify({
          id: d.id,
          state: d.state,
          webhook_id: d.messageId,
          receiver: redactUrl(d.receiverUrl),
          note: 'sent when the watcher next runs',
        }),
      );
    }
    return;
  }
  throw new UsageError(DELIVERIES_USAGE);
}

interface ReplayArgs {
  ids: readonly string[] | 'all-dead' | 'all';
  to: string | null;
}

function parseReplayArgs(args: readonly string[]): ReplayArgs {
  const ids: string[] = [];
  let selection: 'all-dead' | 'all' | null = null;
  let to: string | null = null;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === '--all-dead' || arg === '--all') selection = arg === '--all' ? 'all' : 'all-dead';
    else if (arg === '--to') {
      to = args[(i += 1)] ?? null;
      // The same check as a receiver URL in the config: --to must be one.
      if (to === null || !HttpUrl.safeParse(to).success)
        throw new UsageError('--to needs an http(s) URL');
    } else if (arg.startsWith('--'))
      throw new UsageError(`unknown option ${arg}\n${DELIVERIES_USAGE}`);
    else ids.push(arg);
  }
  if ((selection === null) === (ids.length === 0)) throw new UsageError(DELIVERIES_USAGE);
  return { ids: selection ?? ids, to };
}

/**
 * Makes the chosen deliveries pending again (attempts from zero, same webhook-id), optionally
 * moved to another receiver URL, and re-enables their receivers: one transaction, so a bad id
 * in the list changes nothing. A moved delivery takes the id a delivery of that message to that
 * URL has, so one message is owed at most once per receiver; one already delivered there is
 * left as it was.
 */
function replayDeliveries({ ids, to }: ReplayArgs, store: Store, now: number): Delivery[] {
  const chosen =
    ids === 'all-dead'
      ? store.listDeliveries('dead_lettered')
      : ids === 'all'
        ? REPLAYABLE.flatMap((state) => store.listDeliveries(state))
        : ids.map((id) => {
            const delivery = store.getDelivery(id);
            if (!delivery) throw new UsageError(`no delivery with id ${id}`);
            if (!REPLAYABLE.includes(delivery.state))
              throw new UsageError(
                `delivery ${id} is ${delivery.state}; only dead_lettered or disabled ones are replayed`,
              );
            return delivery;
          });
  const owed = new Map<string, Delivery>();
  const replaced: string[] = [];
  for (const delivery of chosen) {
    const receiverUrl = to ?? delivery.receiverUrl;
    const id = to === null ? delivery.id : deliveryIdFor(delivery.messageId, receiverUrl);
    if (id !== delivery.id) {
      if (store.getDelivery(id)?.state === 'delivered') continue;
      replaced.push(delivery.id);
    }
    owed.set(id, replayed(delivery, now, receiverUrl, id));
  }
  store.replayDeliveries([...owed.values()], replaced);
  return [...owed.values()];
}
