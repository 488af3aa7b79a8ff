import { writeFileSync } from 'node:fs';
import { parseInteger, parseStringOptions, UsageError } from './cli-args.js';
import { DemoReceiver } from './receiver.js';

export interface ReceiverCliOptions {
  port: number;
  host: string;
  secret: string;
  log: string | null;
}

export const RECEIVER_USAGE =
  'usage: receiver-cli [--port 0] [--host 127.0.0.1] --secret whsec_... [--log FILE]';

/** Throws UsageError naming the bad option. The secret falls back to WEBHOOK_SECRET, as the watcher's. */
export function parseReceiverArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): ReceiverCliOptions {
  const values = parseStringOptions(argv, ['port', 'host', 'secret', 'log'], RECEIVER_USAGE);
  const secret = values.secret ?? env['WEBHOOK_SECRET'];
  if (secret === undefined || secret === '')
    throw new UsageError(`--secret is required\n${RECEIVER_USAGE}`);
  return {
    port: parseInteger('port', values.port, 0, 0, 65_535),
    host: values.host ?? '127.0.0.1',
    secret,
    log: values.log ?? null,
  };
}

export interface RunningReceiver {
  receiver: DemoReceiver;
  url: string;
  /** Closes the server and writes the log, if one was asked for. */
  stop: () => Promise<void>;
}

/** Starts the receiver: one JSON line with its URL, then one readable line per new event. */
export async function startReceiver(
  options: ReceiverCliOptions,
  write: (line: string) => void,
): Promise<RunningReceiver> {
  let receiver: DemoReceiver;
  try {
    receiver = new DemoReceiver({ secret: options.secret, print: write });
  } catch (error) {
    // standardwebhooks refuses a secret that is not base64 here, before any request.
    throw new UsageError(`--secret: ${error instanceof Error ? error.message : String(error)}`);
  }
  const url = await receiver.listen(options.port, options.host);
  write(JSON.stringify({ event: 'receiver.listening', url }));
  return {
    receiver,
    url,
    stop: async () => {
      await receiver.close();
      if (options.log === null) return;
      const log = {
        attempts: receiver.attempts,
        duplicates: receiver.duplicates,
        rejected: receiver.rejected,
        deliveries: receiver.deliveries,
      };
      writeFileSync(options.log, `${JSON.stringify(log, null, 2)}\n`);
    },
  };
}
