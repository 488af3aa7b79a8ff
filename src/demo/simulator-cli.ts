#!/usr/bin/env node
import { runAsProcess } from './cli-process.js';
import { parseSimulatorArgs, startSimulator } from './simulator-command.js';

// Entry only: parsing and serving live in simulator-command.ts, where tests reach them.
await runAsProcess(() =>
  startSimulator(parseSimulatorArgs(process.argv.slice(2)), (line) =>
    process.stdout.write(`${line}\n`),
  ),
);
