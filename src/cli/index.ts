/**
 * The command line: `serve` (no arguments), `deliveries list|replay` or `runs add|remove|list|show`;
 * started by main.ts.
 */
import { startApp, type App } from '../app.js';
import { UsageError, runDeliveriesCommand } from './deliveries.js';
import {
  NoPermissionError,
  WatcherAnswerError,
  WatcherUnreachableError,
  runRunsCommand,
} from './runs.js';
import { ConfigError, loadConfig, resolveStateDir } from '../config/load.js';
import { LIMITS } from '../config/schema.js';
import { StoreSchemaError } from '../store/migrations.js';
import { SqliteStore, StoreLockedError } from '../store/sqlite-store.js';
import type { SignalInbox } from './signals.js';

/**
 * Exit codes (sysexits): 0 done or stopped, 1 some run did not succeed, 64 bad command line,
 * 69 the watcher is not reachable (`runs`), 70 internal error, 75 state directory held by another
 * watcher, 77 ADMIN_TOKEN missing or refused (`runs`), 78 bad configuration.
 */
export const EXIT = {
  ok: 0,
  runsFailed: 1,
  usage: 64,
  unavailable: 69,
  internal: 70,
  locked: 75,
  noPermission: 77,
  config: 78,
} as const;

function die(code: number, message: string): never {
  process.stderr.write(`dataframer-run-watcher: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(code);
}

/** Startup failures that are the operator's to fix, each with its own exit code. */
function exitForStartupError(error: unknown): never {
  if (error instanceof ConfigError) die(EXIT.config, `invalid configuration: ${error.message}`);
  if (error instanceof StoreLockedError) die(EXIT.locked, error.message);
  if (error instanceof StoreSchemaError) die(EXIT.internal, error.message);
  throw error;
}

function deliveriesCommand(args: string[]): void {
  let store;
  try {
    store = SqliteStore.open(resolveStateDir(process.env));
  } catch (error) {
    exitForStartupError(error);
  }
  try {
    runDeliveriesCommand(args, store, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    if (error instanceof UsageError) die(EXIT.usage, error.message);
    throw error;
  } finally {
    store.close();
  }
}

async function runsCommand(args: string[], signals: SignalInbox): Promise<void> {
  // Signals are held for the watcher (main.ts): here a stop signal must end the command at once,
  // not wait for the request to time out. 128 + the signal's number, as a shell reports it.
  signals.onStop((signal) => process.exit(signal === 'SIGINT' ? 130 : 143));
  // Belt and braces: no message of this command holds the token, and none ever may. A shorter
  // token is refused before any request, and scrubbing it would garble words that contain it.
  const token = process.env['ADMIN_TOKEN'] ?? '';
  const safe = (text: string) =>
    token.length >= LIMITS.adminTokenChars ? text.split(token).join('***') : text;
  try {
    await runRunsCommand(args, (line) => process.stdout.write(`${line}\n`), process.env);
  } catch (error) {
    const message = safe(error instanceof Error ? error.message : String(error));
    if (error instanceof UsageError) die(EXIT.usage, message);
    if (error instanceof WatcherUnreachableError) die(EXIT.unavailable, message);
    if (error instanceof NoPermissionError) die(EXIT.noPermission, message);
    if (error instanceof WatcherAnswerError) die(EXIT.internal, message);
    die(
      EXIT.internal,
      `failed: ${safe(error instanceof Error ? (error.stack ?? message) : message)}`,
    );
  }
}

async function serve(signals: SignalInbox): Promise<void> {
  // Signals are already caught (main.ts); one that arrived during the start is acted on as soon
  // as the app exists, and SIGTERM as PID 1 in a container is never left to Node's default.
  let app: App;
  try {
    app = await startApp(loadConfig(process.env), { env: process.env, cwd: process.cwd() });
  } catch (error) {
    exitForStartupError(error);
  }
  const crash = (error: unknown) => {
    app.logger.fatal(
      { event: 'watcher.crashed', run_id: null, err: error },
      'unexpected error; exiting',
    );
    process.exit(EXIT.internal);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    // app.stop() ends within the grace; this backstop only matters if the stop itself throws
    // in a way that never settles.
    setTimeout(() => process.exit(code), app.shutdownGraceMs + 1_000).unref();
    app.stop().then(() => process.exit(code), crash);
  };
  signals.onStop(() => exit(EXIT.ok));
  // A reload while stopping would touch a closed store; the stop wins.
  signals.onReload(() => {
    if (!exiting) app.reloadRunList('SIGHUP');
  });
  void app.done.then(exit);
}

export async function runCli(argv: readonly string[], signals: SignalInbox): Promise<void> {
  const [command, ...args] = argv;
  try {
    if (command === 'deliveries') deliveriesCommand(args);
    else if (command === 'runs') await runsCommand(args, signals);
    else if (command === undefined) await serve(signals);
    else
      die(
        EXIT.usage,
        `unknown command "${command}"; run without arguments to watch, "deliveries list|replay" or "runs add|remove|list|show"`,
      );
  } catch (error) {
    die(
      EXIT.internal,
      `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  }
}
