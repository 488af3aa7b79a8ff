#!/usr/bin/env node
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';

/** Exit codes (sysexits): 0 done or stopped, 1 some run did not succeed, 78 bad config, 70 internal error. */
export const EXIT = { ok: 0, runsFailed: 1, internal: 70, config: 78 } as const;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dataframer-run-watcher: invalid configuration: ${error.message}\n`);
      process.exit(EXIT.config);
    }
    throw error;
  }

  const app = await startApp(config);
  const fail = (error: unknown) => {
    app.logger.fatal(
      { event: 'watcher.crashed', run_id: null, err: error },
      'unexpected error; exiting',
    );
    process.exit(EXIT.internal);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);

  const exit = (code: number) => void app.stop().then(() => process.exit(code), fail);
  process.once('SIGTERM', () => exit(EXIT.ok));
  process.once('SIGINT', () => exit(EXIT.ok));
  void app.done.then(exit);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `dataframer-run-watcher: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(EXIT.internal);
});
