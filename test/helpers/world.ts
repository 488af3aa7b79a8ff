import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from '@jest/globals';
import { closeServer, listenOn } from '../../src/demo/http-server.js';
import { DemoReceiver, type DemoReceiverOptions } from '../../src/demo/receiver.js';
import {
  generateScenario,
  type GenerateScenarioOptions,
  type Scenario,
} from '../../src/demo/scenario.js';
import { Simulator, type Faults } from '../../src/demo/simulator.js';
import {
  endChild,
  startWatcher,
  type WatcherOptions,
  type WatcherProcess,
} from './watcher-process.js';

export const API_KEY = 'df_test_key_7f3a9c1e5b';
export const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;

/** Fast settings for tests: a tick every second, short poll spacing, a short retry schedule. */
export const FAST_ENV = {
  POLL_CRON: '* * * * * *',
  POLL_MIN_INTERVAL_MS: '200',
  POLL_MAX_INTERVAL_MS: '1000',
  WEBHOOK_RETRY_SCHEDULE_MS: '50,100,200,400',
  EXIT_WHEN_DONE: 'true',
  SHUTDOWN_GRACE_MS: '5000',
  REQUEST_TIMEOUT_MS: '2000',
  WEBHOOK_TIMEOUT_MS: '2000',
};

/** A fresh directory under the system's temp directory. */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * What points a watcher at its API and receivers: the key, the base URL, the run IDs (none
 * when `runIds` is null) and, with any receiver, the webhook URLs and secret.
 */
function connectionEnv(
  apiUrl: string,
  runIds: readonly string[] | null,
  receiverUrls: readonly string[],
): Record<string, string> {
  return {
    DATAFRAMER_API_KEY: API_KEY,
    DATAFRAMER_BASE_URL: apiUrl,
    ...(runIds !== null ? { WATCH_RUN_IDS: runIds.join(',') } : {}),
    ...(receiverUrls.length > 0
      ? { WEBHOOK_URLS: receiverUrls.join(','), WEBHOOK_SECRET: SECRET }
      : {}),
  };
}

/**
 * The env of a watcher that polls `apiUrl` for `runIds` and posts to `receiverUrls`, on the
 * fast test settings; `extra` overrides any of it.
 */
export function watchEnv(
  apiUrl: string,
  runIds: readonly string[],
  receiverUrls: readonly string[] = [],
  extra: Record<string, string> = {},
): Record<string, string> {
  return { ...FAST_ENV, ...connectionEnv(apiUrl, runIds, receiverUrls), ...extra };
}

/** One verifying receiver of a scenario: DemoReceiver options, and what the watcher's URL adds. */
export interface ReceiverSpec extends Partial<DemoReceiverOptions> {
  /** A query the watcher's URL for this receiver carries (e.g. `token=abc`). */
  query?: string;
}

/** `R` is only the receivers' tuple (their count); `W` what `watcher` is. */
export interface ScenarioOptions<R extends readonly unknown[], W extends WatcherOptions | false> {
  /** generateScenario's options (with startSpreadMs 0 unless given), or a scenario as it is. */
  runs: GenerateScenarioOptions | Scenario;
  /** Faults of the simulated API. */
  faults?: Faults;
  /** The key the simulated API accepts (the watcher always sends API_KEY). */
  apiKey?: string;
  /** The simulated API's clock (Date.now unless given): the runs' timelines follow it. */
  clock?: () => number;
  /** Finished runs the simulated account made before the start (its list shows them). */
  history?: number;
  /** The receivers, in order: one plain receiver unless given; `[]` for none. */
  receivers?: { [K in keyof R]: ReceiverSpec };
  /** Env over the rest; it wins. */
  env?: Record<string, string>;
  /** false: no FAST_ENV, the program's defaults for all that `env` does not set. */
  fast?: boolean;
  /** false: no WATCH_RUN_IDS (the runs come from a config file the test writes). */
  watchRunIds?: boolean;
  /** How the watcher is started; false: not started (the test starts its watchers on `env`). */
  watcher?: W;
}

export interface ScenarioWorld<R extends readonly unknown[], W extends WatcherOptions | false> {
  scenario: Scenario;
  /** The scenario's run IDs, in its order. */
  ids: string[];
  api: { simulator: Simulator; url: string };
  /** One per receiver spec, in order; `url` is the receiver's own, without the query. */
  receivers: { [K in keyof R]: { receiver: DemoReceiver; url: string } };
  /** The first receiver (most tests have one), or null with none. */
  receiver: R extends readonly [] ? null : DemoReceiver;
  /** The watcher's env: FAST_ENV (unless `fast: false`), the API, runs and receivers, `env`. */
  env: Record<string, string>;
  /** The watcher started on `env`, or null with `watcher: false`. */
  watcher: W extends false ? null : WatcherProcess;
}

/**
 * Real parts for tests of the whole program: the simulated API and verifying receivers on
 * 127.0.0.1 port 0, and the built watcher as a child process. Everything is closed after each test.
 */
export function useWorld() {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function api(
    scenario: Scenario,
    faults: Faults = {},
    apiKey = API_KEY,
    now: () => number = Date.now,
    history = 0,
  ) {
    const simulator = new Simulator({ scenario, apiKey, faults, seed: 7, now, history });
    const url = await simulator.listen();
    cleanups.push(() => simulator.close());
    return { simulator, url };
  }

  async function receiver(options: Partial<DemoReceiverOptions> = {}) {
    const receiver = new DemoReceiver({ secret: SECRET, ...options });
    const url = await receiver.listen();
    cleanups.push(() => receiver.close());
    return { receiver, url };
  }

  function watcher(env: Record<string, string>, options: WatcherOptions = {}): WatcherProcess {
    const watcher = startWatcher(env, options);
    // 'exit', not 'close': a grandchild that outlived it may still hold its stdout.
    cleanups.push(() => endChild(watcher.child, 0));
    return watcher;
  }

  /** The program's `deliveries` command, with `args` after it, on a state directory. */
  function deliveries(stateDir: string, ...args: string[]): WatcherProcess {
    return watcher({ STATE_DIR: stateDir }, { args: ['deliveries', ...args] });
  }

  /**
   * The whole world of one test: the runs served by the simulated API, the receivers, the
   * watcher's env, and the watcher started on it (in that order).
   */
  async function scenario<
    const R extends readonly unknown[] = [ReceiverSpec],
    W extends WatcherOptions | false = WatcherOptions,
  >(options: ScenarioOptions<R, W>): Promise<ScenarioWorld<R, W>> {
    const { runs } = options;
    const built = 'runs' in runs ? runs : generateScenario({ startSpreadMs: 0, ...runs });
    const ids = built.runs.map((run) => run.runId);
    const served = await api(built, options.faults, options.apiKey, options.clock, options.history);
    const receivers: { receiver: DemoReceiver; url: string }[] = [];
    const receiverUrls: string[] = [];
    const specs: readonly ReceiverSpec[] = options.receivers ?? [{}];
    for (const { query, ...receiverOptions } of specs) {
      const part = await receiver(receiverOptions);
      receivers.push(part);
      receiverUrls.push(query === undefined ? part.url : `${part.url}?${query}`);
    }
    const env = {
      ...(options.fast === false ? {} : FAST_ENV),
      ...connectionEnv(served.url, options.watchRunIds === false ? null : ids, receiverUrls),
      ...options.env,
    };
    const started = options.watcher === false ? null : watcher(env, options.watcher);
    return {
      scenario: built,
      ids,
      api: served,
      receivers: receivers as ScenarioWorld<R, W>['receivers'],
      receiver: (receivers[0]?.receiver ?? null) as ScenarioWorld<R, W>['receiver'],
      env,
      watcher: started as ScenarioWorld<R, W>['watcher'],
    };
  }

  /** A port on 127.0.0.1 that a server of this test holds until the test ends. */
  async function portInUse(): Promise<string> {
    const server = createServer();
    const url = await listenOn(server, 0, '127.0.0.1');
    cleanups.push(() => closeServer(server));
    return new URL(url).port;
  }

  return { api, receiver, watcher, deliveries, scenario, portInUse };
}

/** The run IDs of webhook bodies a receiver accepted. */
export function deliveredRunIds(receiver: DemoReceiver): string[] {
  return receiver.deliveries.map((d) => (d.body as { data: { run_id: string } }).data.run_id);
}
