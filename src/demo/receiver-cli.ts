#!/usr/bin/env node
import { runAsProcess } from './cli-process.js';
import { parseReceiverArgs, startReceiver } from './receiver-command.js';

// Entry only: parsing and serving live in receiver-command.ts, where tests reach them.
await runAsProcess(() =>
  startReceiver(parseReceiverArgs(process.argv.slice(2)), (line) =>
    process.stdout.write(`${line}\n`),
  ),
);
