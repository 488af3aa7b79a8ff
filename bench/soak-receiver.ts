/**
 * The soak's receiver, in its own process: the demo receiver (verifies every POST with
 * standardwebhooks, drops duplicates by webhook-id) with one change, that the first attempt of
 * a share of the webhook-ids is answered 500, so the watcher's retries are part of the soak.
 * receiver-cli has no option for that; otherwise it behaves and logs as receiver-cli does.
 *
 * usage: soak-receiver --secret whsec_... --log FILE --fail-rate 0.1
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseStringOptions } from '../src/demo/cli-args.js';
import { runAsProcess } from '../src/demo/cli-process.js';
import { DemoReceiver } from '../src/demo/receiver.js';

/** The same share of webhook-ids on every soak: decided by a hash of the id, not a draw. */
function failsFirst(webhookId: string, rate: number): boolean {
  return createHash('sha256').update(webhookId).digest().readUInt32BE(0) / 2 ** 32 < rate;
}

await runAsProcess(async () => {
  const options = parseStringOptions(
    process.argv.slice(2),
    ['secret', 'log', 'fail-rate'],
    'usage: soak-receiver --secret whsec_... --log FILE --fail-rate 0.1',
  );
  const rate = Number(options['fail-rate'] ?? 0);
  let failed = 0;
  const receiver = new DemoReceiver({
    secret: options.secret ?? '',
    respond: ({ webhookId, attempt }) => {
      if (attempt !== 1 || !failsFirst(webhookId, rate)) return undefined;
      failed++;
      return 500;
    },
  });
  const url = await receiver.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ event: 'receiver.listening', url })}\n`);
  return {
    stop: async () => {
      await receiver.close();
      const log = {
        attempts: receiver.attempts,
        duplicates: receiver.duplicates,
        rejected: receiver.rejected,
        failed,
        deliveries: receiver.deliveries,
      };
      writeFileSync(options.log ?? 'soak-receiver.json', `${JSON.stringify(log)}\n`);
    },
  };
});
