#!/usr/bin/env node
import { cappedArgv, semiSpaceChosen } from './runtime/young-generation.js';

// V8 reads its heap flags only at start, so unless the operator chose a size, this process
// replaces itself once (execve: same pid, same fds, same env) with the cap, before anything
// else is loaded. Where execve is missing (Windows) or refused, it runs with V8's own sizing.
if (!semiSpaceChosen(process.execArgv, process.env['NODE_OPTIONS'])) {
  try {
    process.execve?.(
      process.execPath,
      cappedArgv(process.execPath, process.execArgv, process.argv),
    );
  } catch {
    // Runs on uncapped: memory use is higher, nothing else changes.
  }
}
await import('./cli/index.js');
