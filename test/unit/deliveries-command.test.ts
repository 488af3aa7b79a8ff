import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, runDeliveriesCommand } from '../../src/cli/deliveries.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { newRunRecord } from '../../src/domain/run.js';
import { newDelivery } from '../helpers/delivery.js';
import { deliveryIdFor, type Delivery, type DeliveryState } from '../../src/domain/delivery.js';

const OLD_URL = 'https://hooks.example.test/in?token=old-secret-token';
const NEW_URL = 'https://hooks.example.test/in?token=new-secret-token';

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deliveries-cmd-'));
  store = SqliteStore.open(dir);
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A delivery that ran out of attempts, in `state`. */
function delivery(id: string, state: DeliveryState, receiverUrl = OLD_URL): Delivery {
  return newDelivery(id, receiverUrl, {
    state,
    attempts: 8,
    nextAttemptAt: 1,
    lastError: 'HTTP 500',
    createdAt: 1,
    updatedAt: 1,
  });
}

function run(args: string[]): Record<string, unknown>[] {
  const lines: string[] = [];
  runDeliveriesCommand(args, store, (line) => lines.push(line), 5_000);
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('deliveries replay', () => {
  it('takes a delivery of a receiver disabled by 410 and re-enables the receiver', () => {
    store.saveDelivery(delivery('a', 'disabled'));
    store.disableReceiver(OLD_URL, 1);
    run(['replay', 'a']);
    expect(store.getDelivery('a')).toMatchObject({
      state: 'pending',
      attempts: 0,
      nextAttemptAt: 5_000,
      lastError: null,
    });
    expect(store.disabledReceivers().has(OLD_URL)).toBe(false);
  });

  it('--all takes every dead-lettered and disabled delivery, and leaves the rest', () => {
    store.saveDelivery(delivery('dead', 'dead_lettered'));
    store.saveDelivery(delivery('off', 'disabled'));
    store.saveDelivery(delivery('done', 'delivered'));
    store.saveDelivery(delivery('owed', 'pending'));
    const lines = run(['replay', '--all']);
    expect(lines.map((l) => l['id']).sort()).toEqual(['dead', 'off']);
    expect(
      store
        .listDeliveries('pending')
        .map((d) => d.id)
        .sort(),
    ).toEqual(['dead', 'off', 'owed']);
    expect(store.getDelivery('done')?.state).toBe('delivered');
  });

  it('--to moves a delivery to another receiver URL, keeping its webhook-id; output hides tokens', () => {
    store.saveDelivery(delivery('a', 'dead_lettered'));
    const [line] = run(['replay', 'a', '--to', NEW_URL]);
    const moved = deliveryIdFor('msg_a', NEW_URL);
    expect(line?.['id']).toBe(moved);
    expect(store.getDelivery('a')).toBeUndefined();
    expect(store.getDelivery(moved)).toMatchObject({
      receiverUrl: NEW_URL,
      messageId: 'msg_a',
      state: 'pending',
    });
    expect(JSON.stringify(line)).not.toContain('new-secret-token');
  });

  it('--to never owes one message twice to one receiver, nor resends what it already got', () => {
    // Two dead letters of one message (two old URLs), and one message already delivered there.
    store.saveDelivery({ ...delivery('x1', 'dead_lettered'), messageId: 'msg_x' });
    store.saveDelivery({
      ...delivery('x2', 'disabled', 'https://other.example.test/in'),
      messageId: 'msg_x',
    });
    store.saveDelivery({ ...delivery('y', 'dead_lettered'), messageId: 'msg_y' });
    store.saveDelivery({
      ...delivery(deliveryIdFor('msg_y', NEW_URL), 'delivered', NEW_URL),
      messageId: 'msg_y',
    });
    run(['replay', '--all', '--to', NEW_URL]);
    const pending = store.listDeliveries('pending');
    expect(pending.map((d) => [d.messageId, d.receiverUrl])).toEqual([['msg_x', NEW_URL]]);
    expect(store.getDelivery('y')?.state).toBe('dead_lettered'); // left as it was
  });

  it('is all or nothing: one bad id in the list changes no delivery', () => {
    store.saveDelivery(delivery('a', 'dead_lettered'));
    store.saveDelivery(delivery('c', 'dead_lettered'));
    expect(() => run(['replay', 'a', 'missing', 'c'])).toThrow('no delivery with id missing');
    expect(() => run(['replay', 'a', 'c', 'a-delivered'])).toThrow(UsageError);
    store.saveDelivery(delivery('b', 'delivered'));
    expect(() => run(['replay', 'a', 'b', 'c'])).toThrow('delivery b is delivered');
    expect(store.listDeliveries('dead_lettered').map((d) => d.id)).toEqual(['a', 'c']);
  });

  it('rejects a --to that is not an http(s) URL, and a replay with nothing chosen', () => {
    store.saveDelivery(delivery('a', 'dead_lettered'));
    expect(() => run(['replay', 'a', '--to', 'ftp://x/y'])).toThrow('--to needs an http(s) URL');
    expect(() => run(['replay', 'a', '--to'])).toThrow(UsageError);
    expect(() => run(['replay'])).toThrow(UsageError);
    expect(() => run(['replay', '--all', 'a'])).toThrow(UsageError);
    expect(store.getDelivery('a')?.state).toBe('dead_lettered');
  });
});

describe('store retention', () => {
  it('prunes delivered deliveries and finished runs that owe nothing and are not listed', () => {
    const finishedRun = (runId: string, finishedAt: number) => ({
      ...newRunRecord(runId, 0, 0),
      status: 'SUCCEEDED',
      finishedAt,
      outcome: 'run.succeeded' as const,
    });
    store.finishRun(finishedRun('run-old', 100), [
      { ...delivery('old-done', 'delivered'), runId: 'run-old', updatedAt: 100 },
    ]);
    store.finishRun(finishedRun('run-owes', 100), [
      { ...delivery('old-dead', 'dead_lettered'), runId: 'run-owes', updatedAt: 100 },
    ]);
    store.finishRun(finishedRun('run-gone-receiver', 100), [
      { ...delivery('old-off', 'disabled'), runId: 'run-gone-receiver', updatedAt: 100 },
    ]);
    store.finishRun(finishedRun('run-listed', 100), []);
    store.finishRun(finishedRun('run-new', 900), [
      { ...delivery('new-done', 'delivered'), runId: 'run-new', updatedAt: 900 },
    ]);

    expect(store.prune(500, new Set(['run-listed']))).toEqual({ runs: 1, deliveries: 1 });
    expect(store.getRun('run-old')).toBeUndefined();
    expect(store.getDelivery('old-done')).toBeUndefined();
    // Kept: what is still owed, what the config still lists, and what is recent.
    expect(store.getRun('run-owes')).toBeDefined();
    expect(store.getDelivery('old-dead')?.state).toBe('dead_lettered');
    expect(store.getRun('run-gone-receiver')).toBeDefined(); // a 410 may be replayed later
    expect(store.getDelivery('old-off')?.state).toBe('disabled');
    expect(store.getRun('run-listed')).toBeDefined();
    expect(store.getRun('run-new')).toBeDefined();
    expect(store.getDelivery('new-done')).toBeDefined();
  });
});
