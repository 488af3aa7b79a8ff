import { EX_USAGE, UsageError } from './cli-args.js';

/**
 * Runs a demo server as a process: starts it, and on SIGTERM or SIGINT stops it (which writes
 * its log) and exits 0, so a demo script can always collect what happened.
 */
export async function runAsProcess(
  start: () => Promise<{ stop: () => Promise<void> }>,
): Promise<void> {
  let handle: { stop: () => Promise<void> };
  try {
    handle = await start();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? EX_USAGE : 1);
  }
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    handle.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(
          `stop failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
