#!/usr/bin/env node
import { accessSync, constants } from 'node:fs';
import { cappedArgv, semiSpaceChosen } from './runtime/young-generation.js';

// V8 reads its heap flags only at start, so unless the operator chose a size, this process
// replaces itself once (execve: same pid, same fds, same env) with the cap, before anything
// else is loaded. A failed execve aborts Node instead of throwing, so it is only tried where it
// can work: not on Windows (no execve) and only with a node binary this user may execute.
// Elsewhere the watcher runs with V8's own sizing: more memory, nothing else changes.
if (
  process.platform !== 'win32' &&
  typeof process.execve === 'function' &&
  !semiSpaceChosen(process.execArgv, process.env['NODE_OPTIONS']) &&
  isExecutable(process.execPath)
) {
  process.execve(process.execPath, cappedArgv(process.execPath, process.execArgv, process.argv));
}
await import('./cli/index.js');

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
