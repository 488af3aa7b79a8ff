import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/bench/bench/ where the compiled bench runs. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DIST = path.join(ROOT, 'dist');

/** Children still running: stopped if the bench itself is interrupted or fails. */
const running = new Set<ChildProcess>();

export function stopAll(): void {
  for (const child of running) child.kill('SIGTERM');
}

/** A parsed JSON line of a child's stdout. */
export type Line = Record<string, unknown>;

/**
 * Reads the JSON lines a child appends to a file, from where the last read stopped. The
 * children write to files rather than pipes so that a slow reader here never blocks them.
 */
export class LogTail {
  readonly #file: string;
  #offset = 0;
  #partial = '';

  constructor(file: string) {
    this.#file = file;
  }

  /** New complete lines since the last call that contain `needle` (cheap filter), parsed. */
  read(needle = ''): Line[] {
    const fd = openSync(this.#file, 'r');
    const chunks: Buffer[] = [];
    try {
      const buffer = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, this.#offset);
        if (n === 0) break;
        this.#offset += n;
        chunks.push(Buffer.from(buffer.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
    const text = this.#partial + Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    const parsed: Line[] = [];
    for (const line of lines) {
      if (!line.startsWith('{') || !line.includes(needle)) continue;
      try {
        parsed.push(JSON.parse(line) as Line);
      } catch {
        // not one of ours (a stray print); skipped
      }
    }
    return parsed;
  }
}

export interface Child {
  process: ChildProcess;
  pid: number;
  spawnedAt: number;
  stdoutFile: string;
  stderrFile: string;
  /** Exit code, or the signal's name. */
  exited: Promise<number | string>;
  /** Waits for a stdout line with `event` (and matching `where`), polling the file. */
  waitForEvent: (event: string, timeoutMs: number) => Promise<Line>;
  stop: (signal?: NodeJS.Signals) => Promise<number | string>;
}

/**
 * The watcher is launched as `npm start` and the image launch it: with 8 MB semi-spaces, unless
 * NODE_OPTIONS chooses a size for the run being measured.
 */
export const WATCHER_NODE_FLAGS = ['--max-semi-space-size=8'];

/** Runs `dist/<script>` on this Node with exactly `env` (plus PATH), output into `dir`. */
export function startNode(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  dir: string,
): Child {
  const stdoutFile = path.join(dir, `${name}.out`);
  const stderrFile = path.join(dir, `${name}.err`);
  const out = openSync(stdoutFile, 'a');
  const err = openSync(stderrFile, 'a');
  const spawnedAt = Date.now();
  const nodeFlags =
    script === 'main.js' && !env['NODE_OPTIONS']?.includes('semi-space') ? WATCHER_NODE_FLAGS : [];
  const child = spawn(process.execPath, [...nodeFlags, path.join(DIST, script), ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', out, err],
  });
  closeSync(out);
  closeSync(err);
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  running.add(child);
  child.on('exit', () => running.delete(child));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  let done = false;
  void exited.then(() => (done = true));
  const tail = new LogTail(stdoutFile);
  const seen: Line[] = [];

  const waitForEvent = async (event: string, timeoutMs: number): Promise<Line> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      seen.push(...tail.read(`"${event}"`));
      const found = seen.find((line) => line['event'] === event);
      if (found) return found;
      if (done) throw new Error(`${name} exited before "${event}"; see ${stderrFile}`);
      if (Date.now() > deadline) throw new Error(`${name}: no "${event}" within ${timeoutMs} ms`);
      await sleep(20);
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!done) child.kill(signal);
    return exited;
  };
  return {
    process: child,
    pid: child.pid,
    spawnedAt,
    stdoutFile,
    stderrFile,
    exited,
    waitForEvent,
    stop,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the exit, or stops the child (SIGTERM, then SIGKILL) after `timeoutMs`. */
export async function exitWithin(child: Child, timeoutMs: number): Promise<number | string> {
  const timer = sleep(timeoutMs).then(() => 'timeout' as const);
  const first = await Promise.race([child.exited, timer]);
  if (first !== 'timeout') return first;
  child.process.kill('SIGTERM');
  const second = await Promise.race([child.exited, sleep(15_000).then(() => 'timeout' as const)]);
  if (second !== 'timeout') return `timeout (${second})`;
  child.process.kill('SIGKILL');
  return `timeout (${await child.exited})`;
}
