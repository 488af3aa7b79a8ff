import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { runBody } from '../helpers/run-body.js';
import { startWatcher, type WatcherProcess } from '../helpers/watcher-process.js';
import { API_KEY, SECRET } from '../helpers/world.js';

/**
 * Signals at the worst moments, on the built program, many starts each: every stop signal ends
 * in a graceful stop with exit 0; SIGHUP never ends the process.
 */

const RUN_ID = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
/** Nothing listens on port 9 here: every poll fails to connect, as with an unreachable API. */
const UNREACHABLE_API = 'http://127.0.0.1:9';
const BASE_ENV = {
  DATAFRAMER_API_KEY: API_KEY,
  POLL_CRON: '* * * * * *',
  POLL_MIN_INTERVAL_MS: '200',
  POLL_MAX_INTERVAL_MS: '1000',
  SHUTDOWN_GRACE_MS: '1500',
  WEBHOOK_TIMEOUT_MS: '1000',
};
/** At most this many watchers at once, so 2 cores are not the thing under test. */
const PARALLEL = 4;

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => closeServer(server)));
});

/** A real server that answers with `reply`, and calls `onRequest` for each request it gets. */
async function server(
  reply: (req: IncomingMessage, res: ServerResponse) => void,
  onRequest: (req: IncomingMessage) => void = () => {},
): Promise<string> {
  const srv = createServer((req, res) => {
    onRequest(req);
    reply(req, res);
  });
  servers.push(srv);
  return listenOn(srv, 0, '127.0.0.1');
}

/** Never answers: a request stays in flight until the server is closed. */
const hold = () => {};

async function inBatches<T>(count: number, start: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let next = 0; next < count; next += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, count - next) }, (_, i) =>
      start(next + i),
    );
    results.push(...(await Promise.all(batch)));
  }
  return results;
}

interface Ending {
  code: number | string;
  stopped: boolean;
  stderr: string;
}

async function ending(watcher: WatcherProcess): Promise<Ending> {
  const code = await watcher.exited;
  return {
    code,
    stopped: watcher.byEvent('watcher.stopped').length === 1,
    stderr: watcher.stderr(),
  };
}

/** Every start ended gracefully: exit 0 and the final `watcher.stopped` line. */
function expectGraceful(endings: Ending[]): void {
  const bad = endings.filter((e) => e.code !== 0 || !e.stopped);
  expect(bad).toEqual([]);
}

/** Starts a watcher and sends `signal` the moment a log line matching `when` appears. */
async function signalAt(
  env: Record<string, string>,
  when: (event: unknown) => boolean,
  signal: NodeJS.Signals,
): Promise<WatcherProcess> {
  const watcher = startWatcher(env);
  await watcher.waitFor((line) => when(line.event));
  watcher.kill(signal);
  return watcher;
}

const firstLine = () => true;
const started = (event: unknown) => event === 'watcher.started';

describe('stop means stop, from the first line on', () => {
  it.each([
    ['SIGTERM', 'right after the first line (run.added), API unreachable', firstLine, 20],
    ['SIGINT', 'right after the first line (run.added), API unreachable', firstLine, 10],
    ['SIGTERM', 'right after watcher.started', started, 10],
  ] as const)('%s %s: graceful every time', async (signal, _when, when, starts) => {
    const endings = await inBatches(starts, async () =>
      ending(
        await signalAt(
          { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, WATCH_RUN_IDS: RUN_ID },
          when,
          signal,
        ),
      ),
    );
    expectGraceful(endings);
  });

  it('SIGTERM right after watcher.started with no runs: graceful every time', async () => {
    const endings = await inBatches(10, async () =>
      ending(
        await signalAt({ ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API }, started, 'SIGTERM'),
      ),
    );
    expectGraceful(endings);
  });

  it('SIGTERM while 10,000 runs load: the start finishes or stops, then a graceful stop', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'watcher-signals-'));
    const configFile = path.join(dir, 'watcher.json');
    const ids = Array.from(
      { length: 10_000 },
      (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    );
    writeFileSync(configFile, JSON.stringify({ watchRunIds: ids }));
    const endings = await inBatches(10, async () =>
      ending(
        await signalAt(
          { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, CONFIG_FILE: configFile },
          firstLine,
          'SIGTERM',
        ),
      ),
    );
    expectGraceful(endings);
  });

  it('SIGTERM during the first poll (the API holds the request): graceful every time', async () => {
    const endings = await inBatches(10, async () => {
      let watcher: WatcherProcess | undefined;
      const polled = new Promise<void>((resolve) => {
        void server(hold, () => resolve()).then((url) => {
          watcher = startWatcher({ ...BASE_ENV, DATAFRAMER_BASE_URL: url, WATCH_RUN_IDS: RUN_ID });
        });
      });
      await polled;
      watcher!.kill('SIGTERM');
      return ending(watcher!);
    });
    expectGraceful(endings);
  });

  it('SIGTERM during a delivery (the receiver holds the request): graceful every time', async () => {
    const api = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(runBody({ id: RUN_ID, status: 'SUCCEEDED' })));
    });
    const endings = await inBatches(10, async () => {
      let watcher: WatcherProcess | undefined;
      const delivering = new Promise<void>((resolve) => {
        void server(hold, () => resolve()).then((receiverUrl) => {
          watcher = startWatcher({
            ...BASE_ENV,
            DATAFRAMER_BASE_URL: api,
            WATCH_RUN_IDS: RUN_ID,
            WEBHOOK_URLS: receiverUrl,
            WEBHOOK_SECRET: SECRET,
            WEBHOOK_TIMEOUT_MS: '1000',
          });
        });
      });
      await delivering;
      watcher!.kill('SIGTERM');
      return ending(watcher!);
    });
    expectGraceful(endings);
  });
});

describe('SIGHUP never ends the process', () => {
  it.each([
    ['right after the first line', firstLine],
    ['right after watcher.started', started],
  ] as const)('%s: still running, then a SIGTERM stops it gracefully', async (_when, when) => {
    const endings = await inBatches(10, async () => {
      const watcher = await signalAt(
        { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, WATCH_RUN_IDS: RUN_ID },
        when,
        'SIGHUP',
      );
      // The reload it asked for is applied once the watcher runs; then it is still running.
      await watcher.waitFor((line) => line.event === 'config.reloaded');
      const alive = watcher.child.exitCode === null && watcher.child.signalCode === null;
      watcher.kill('SIGTERM');
      return { alive, ...(await ending(watcher)) };
    });
    expect(endings.filter((e) => !e.alive)).toEqual([]);
    expectGraceful(endings);
  });
});
