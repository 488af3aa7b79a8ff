import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLine } from './log-sink.js';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/**
 * Every child a test starts, on the global object so the jest setup file (a module instance of
 * its own) sees the same set; `test/helpers/end-children.ts` ends them after each test.
 */
const live: Set<ChildProcess> = ((
  globalThis as { __testChildren?: Set<ChildProcess> }
).__testChildren ??= new Set());

/** Adds a child to the set ended after each test. */
export function trackChild(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it has exited. */
export async function endChild(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Ends every child still running (after each test, passed or failed). */
export async function endAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => endChild(child)));
}

export interface WatcherProcess {
  child: ChildProcess;
  /** Raw stdout and stderr so far. */
  stdout: () => string;
  stderr: () => string;
  /** Parsed JSON lines of stdout so far. */
  lines: () => LogLine[];
  byEvent: (event: string) => LogLine[];
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Waits until some log line satisfies `predicate` (or the process exits, or `timeoutMs`). */
  waitFor: (predicate: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>;
  kill: (signal?: NodeJS.Signals) => void;
}

export interface WatcherOptions {
  cwd?: string;
  args?: string[];
  main?: string;
  /** A command that runs node for us, e.g. `['unshare', '-fp', '--mount-proc']`. */
  wrap?: string[];
}

/**
 * Runs the built program (dist/main.js) with only the env given here (plus PATH), the way a
 * container would, on the Node that runs the tests.
 */
export function startWatcher(
  env: Record<string, string>,
  options: WatcherOptions = {},
): WatcherProcess {
  const [command, ...prefix] = [...(options.wrap ?? []), process.execPath];
  const argv = [...prefix, options.main ?? MAIN, ...(options.args ?? [])];
  const child = spawn(command, argv, {
    cwd: options.cwd ?? process.cwd(),
    env: {
      PATH: process.env['PATH'] ?? '',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      // Each process its own state directory unless a test shares one on purpose.
      STATE_DIR: mkdtempSync(path.join(tmpdir(), 'watcher-state-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    waiters.forEach((check) => check());
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const exited = new Promise<number | string>((resolve) =>
    // 'close', not 'exit': it waits for stdout and stderr to be fully read.
    child.on('close', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
      waiters.forEach((check) => check());
    }),
  );
  const lines = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  const waitFor = (predicate: (line: LogLine) => boolean, timeoutMs = 30_000) =>
    new Promise<LogLine>((resolve, reject) => {
      // Re-checked on every output and on a short interval, for predicates on outside state.
      const poll = setInterval(() => check(), 50);
      const timer = setTimeout(() => {
        clearInterval(poll);
        waiters.delete(check);
        reject(new Error(`timed out waiting for a log line; stderr: ${err.slice(-2000)}`));
      }, timeoutMs);
      function check() {
        const found = lines().find(predicate);
        if (found || child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          clearInterval(poll);
          waiters.delete(check);
          if (found) resolve(found);
          else
            reject(
              new Error(
                `process exited (${child.exitCode ?? child.signalCode}) before the log line; stderr: ${err.slice(-2000)}`,
              ),
            );
        }
      }
      waiters.add(check);
      check();
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    lines,
    byEvent: (event) => lines().filter((line) => line.event === event),
    exited,
    waitFor,
    kill: (signal = 'SIGTERM') => child.kill(signal),
  };
}
