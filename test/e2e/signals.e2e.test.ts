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

/**
 * From the signal to the exit, at most the grace plus a wide margin for a loaded machine: a
 * stop that waited for the request or webhook timeout (10 s by default) would be far past it.
 */
const EXIT_WITHIN_MS = Number(BASE_ENV.SHUTDOWN_GRACE_MS) + 5_000;

interface Ending {
  code: number | string;
  stopped: boolean;
  stderr: string;
  exitMs: number;
}

/** Sends `signal` (then any `more`, at once) and waits for the exit. */
async function ending(
  watcher: WatcherProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  ...more: NodeJS.Signals[]
): Promise<Ending> {
  const signalledAt = performance.now();
  watcher.kill(signal);
  for (const next of more) watcher.kill(next);
  const code = await watcher.exited;
  return {
    code,
    stopped: watcher.byEvent('watcher.stopped').length === 1,
    stderr: watcher.stderr(),
    exitMs: performance.now() - signalledAt,
  };
}

/** Every start ended gracefully: exit 0 and the final `watcher.stopped` line, within the grace. */
function expectGraceful(endings: Ending[], withinMs = EXIT_WITHIN_MS): void {
  const bad = endings.filter((e) => e.code !== 0 || !e.stopped || e.exitMs > withinMs);
  expect(bad).toEqual([]);
}

/** Starts a watcher and waits for the first log line matching `when`. */
async function startedUntil(
  env: Record<string, string>,
  when: (event: unknown) => boolean,
): Promise<WatcherProcess> {
  const watcher = startWatcher(env);
  await watcher.waitFor((line) => when(line.event));
  return watcher;
}

/** A config file listing 10,000 runs: a start with that much to load. */
let tenThousandRunsFile: string | null = null;
function tenThousandRunsEnv(): Record<string, string> {
  if (tenThousandRunsFile === null) {
    tenThousandRunsFile = path.join(mkdtempSync(path.join(tmpdir(), 'watcher-signals-')), 'w.json');
    const ids = Array.from(
      { length: 10_000 },
      (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    );
    writeFileSync(tenThousandRunsFile, JSON.stringify({ watchRunIds: ids }));
  }
  return { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, CONFIG_FILE: tenThousandRunsFile };
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
        await startedUntil(
          { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, WATCH_RUN_IDS: RUN_ID },
          when,
        ),
        signal,
      ),
    );
    expectGraceful(endings);
  });

  it('SIGTERM right after watcher.started with no runs: graceful every time', async () => {
    const endings = await inBatches(10, async () =>
      ending(await startedUntil({ ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API }, started)),
    );
    expectGraceful(endings);
  });

  it('SIGTERM while 10,000 runs load: the start finishes, then a graceful stop', async () => {
    const endings = await inBatches(10, async () =>
      ending(await startedUntil(tenThousandRunsEnv(), firstLine)),
    );
    // The start (10,000 runs added) finishes first, and is not timed here.
    expectGraceful(endings, Infinity);
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
      return ending(watcher!);
    });
    expectGraceful(endings);
  });
});

describe('SIGHUP never ends the process', () => {
  it('not even right after a SIGTERM, while the watcher stops', async () => {
    const endings = await inBatches(10, async () =>
      ending(
        await startedUntil(
          { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, WATCH_RUN_IDS: RUN_ID },
          started,
        ),
        'SIGTERM',
        'SIGHUP',
      ),
    );
    expectGraceful(endings);
  });

  it.each([
    ['right after the first line', firstLine, 10, false],
    ['right after watcher.started', started, 10, false],
    ['while 10,000 runs load', firstLine, 5, true],
  ] as const)(
    '%s: still running, then a SIGTERM stops it gracefully',
    async (_when, when, starts, many) => {
      const env = many
        ? tenThousandRunsEnv()
        : { ...BASE_ENV, DATAFRAMER_BASE_URL: UNREACHABLE_API, WATCH_RUN_IDS: RUN_ID };
      const endings = await inBatches(starts, async () => {
        const watcher = await startedUntil(env, when);
        watcher.kill('SIGHUP');
        // The reload it asked for is applied once the watcher runs; then it is still running.
        await watcher.waitFor((line) => line.event === 'config.reloaded');
        const alive = watcher.child.exitCode === null && watcher.child.signalCode === null;
        return { alive, ...(await ending(watcher)) };
      });
      expect(endings.filter((e) => !e.alive)).toEqual([]);
      expectGraceful(endings);
    },
  );
});
