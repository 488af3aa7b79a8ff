#!/usr/bin/env node
import { catchSignals } from './cli/signals.js';

// Signals first, before any other module loads: from here on SIGTERM and SIGINT always end in a
// graceful stop and SIGHUP never kills the process, however far the start has got.
const signals = catchSignals();
const { runCli } = await import('./cli/index.js');
await runCli(process.argv.slice(2), signals);
