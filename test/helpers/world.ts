import { afterEach } from '@jest/globals';
import { DemoReceiver, type DemoReceiverOptions } from '../../src/demo/receiver.js';
import type { Scenario } from '../../src/demo/scenario.js';
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
  return {
    ...FAST_ENV,
    DATAFRAMER_API_KEY: API_KEY,
    DATAFRAMER_BASE_URL: apiUrl,
    WATCH_RUN_IDS: runIds.join(','),
    ...(receiverUrls.length > 0
      ? { WEBHOOK_URLS: receiverUrls.join(','), WEBHOOK_SECRET: SECRET }
      : {}),
    ...extra,
  };
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

  return {
    async api(scenario: Scenario, faults: Faults = {}, apiKey = API_KEY) {
      const simulator = new Simulator({ scenario, apiKey, faults, seed: 7 });
      const url = await simulator.listen();
      cleanups.push(() => simulator.close());
      return { simulator, url };
    },
    async receiver(options: Partial<DemoReceiverOptions> = {}) {
      const receiver = new DemoReceiver({ secret: SECRET, ...options });
      const url = await receiver.listen();
      cleanups.push(() => receiver.close());
      return { receiver, url };
    },
    watcher(env: Record<string, string>, options: WatcherOptions = {}): WatcherProcess {
      const watcher = startWatcher(env, options);
      // 'exit', not 'close': a grandchild that outlived it may still hold its stdout.
      cleanups.push(() => endChild(watcher.child, 0));
      return watcher;
    },
  };
}

/** The run IDs of webhook bodies a receiver accepted. */
export function deliveredRunIds(receiver: DemoReceiver): string[] {
  return receiver.deliveries.map((d) => (d.body as { data: { run_id: string } }).data.run_id);
}
