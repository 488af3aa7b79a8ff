import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { SECRET, tempDir, useWorld } from '../helpers/world.js';

const world = useWorld();

/** A receiver that never answers its first request (a deploy catches it in flight), then 200s. */
const requests: IncomingHttpHeaders[] = [];
const receiver = createServer((req, res) => {
  requests.push(req.headers);
  if (requests.length > 1) res.end();
});
afterEach(() => closeServer(receiver));

describe('a deploy during a slow receiver', () => {
  it('counts the attempt a kill cut short, and the next start sends it again under the same webhook-id', async () => {
    const receiverUrl = await listenOn(receiver, 0, '127.0.0.1');
    const stateDir = tempDir('watcher-deploy-');
    // This test's own receiver, not a DemoReceiver of the world.
    const { env, watcher: first } = await world.scenario({
      runs: {
        seed: 4,
        count: 1,
        minDurationMs: 100,
        maxDurationMs: 100,
        outcomes: { SUCCEEDED: 1 },
      },
      receivers: [],
      env: { WEBHOOK_URLS: receiverUrl, WEBHOOK_SECRET: SECRET, STATE_DIR: stateDir },
    });
    await first.waitFor(() => requests.length === 1);
    first.kill('SIGKILL');
    await first.exited;

    const list = world.deliveries(stateDir, 'list', '--state', 'all');
    expect(await list.exited).toBe(0);
    const [owed] = list.lines();
    expect(owed).toMatchObject({ state: 'pending', attempts: 1 });
    expect(String(owed?.['last_error'])).toContain('interrupted');

    const second = world.watcher(env);
    expect(await second.exited).toBe(0);
    expect(second.byEvent('webhook.delivered')).toEqual([expect.objectContaining({ attempts: 2 })]);
    expect(requests).toHaveLength(2);
    expect(requests[1]?.['webhook-id']).toBe(requests[0]?.['webhook-id']);
  });
});
