import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, afterEach } from '@jest/globals';
import type { LogLine } from '../helpers/log-sink.js';

/**
 * Containers of the built image for the image tests (scripts/image/test.sh builds it and sets
 * WATCHER_IMAGE). Every container runs with --network=host, so it reaches the simulator and the
 * receivers the test starts on 127.0.0.1, and each gets an HTTP port of its own.
 */

/** The image under test; unset when the suite runs outside `npm run test:image`. */
export const IMAGE = process.env['WATCHER_IMAGE'] ?? '';
/** The image it was built on, to tell the image's own layers from the base's. */
export const BASE_IMAGE = process.env['WATCHER_BASE_IMAGE'] ?? '';
/** crun refuses these hosts' hybrid cgroups; runc works. */
export const RUNTIME = process.env['PODMAN_RUNTIME'] ?? 'runc';

/** Every container and volume a test makes carries this label, for cleanup. */
const LABEL = `dataframer-image-test=${process.pid}`;

/** A soft limit of this process (podman's own defaults are refused here), capped at `cap`. */
function ownLimit(name: string, cap: number): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = new RegExp(`^Max ${name}\\s+(\\S+)`, 'm').exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? cap : Math.min(Number(soft), cap);
}
// nproc counts every process of the uid on the host; a higher value than this was refused here.
export const ULIMITS = [
  '--ulimit',
  `nofile=${ownLimit('open files', 65_536)}:${ownLimit('open files', 65_536)}`,
  '--ulimit',
  `nproc=${ownLimit('processes', 4_096)}:${ownLimit('processes', 4_096)}`,
];

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs podman; resolves with its exit code (-1 if it was stopped at `timeoutMs`), never rejects. */
export function podman(args: readonly string[], timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      'podman',
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === 'number' ? error.code : error.killed ? -1 : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** podman, and an error naming the command and its stderr if it did not exit 0. */
export async function podmanOk(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const result = await podman(args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`podman ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RunOptions {
  env?: Record<string, string>;
  /** A named volume (or a host path) mounted at /data. */
  volume?: string;
  user?: string;
  readOnly?: boolean;
  /** Keep the image's HEALTHCHECK (podman then also logs that it has no systemd for timers). */
  healthcheck?: boolean;
  entrypoint?: string;
  args?: string[];
  extra?: string[];
}

export interface Container {
  name: string;
  port: number;
  /** The `podman run` command line, for messages. */
  command: string;
  logs: () => Promise<{ stdout: string; stderr: string }>;
  lines: () => Promise<LogLine[]>;
  byEvent: (event: string) => Promise<LogLine[]>;
  /** Polls the logs until a line satisfies `predicate`; fails at once if the container exits. */
  waitFor: (predicate: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>;
  /** Waits for the container to exit; resolves with its exit code. */
  exited: (timeoutMs?: number) => Promise<number>;
  status: () => Promise<string>;
}

function parseLines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/**
 * Starts containers of the image and removes every one (with its anonymous /data volume) and
 * every named volume after each test, passed or failed: `podman rm -f -v`, `podman volume rm -f`.
 */
export function usePodman() {
  const containers = new Set<string>();
  const volumes = new Set<string>();
  let counter = 0;

  async function removeAll(): Promise<void> {
    const names = [...containers];
    containers.clear();
    // By label too: a container whose `podman run` timed out on our side may still exist.
    const labelled = await podman(['ps', '-aq', '--filter', `label=${LABEL}`]);
    const all = [...names, ...labelled.stdout.split('\n').filter(Boolean)];
    if (all.length > 0) await podman(['rm', '-f', '-v', '-t', '0', '--ignore', ...all], 120_000);
    const vols = [...volumes];
    volumes.clear();
    if (vols.length > 0) await podman(['volume', 'rm', '-f', ...vols], 60_000);
  }
  afterEach(removeAll, 180_000);
  afterAll(removeAll, 180_000);

  return {
    async volume(): Promise<string> {
      const name = `dfw-test-${process.pid}-v${++counter}`;
      await podmanOk(['volume', 'create', '--label', LABEL, name]);
      volumes.add(name);
      return name;
    },

    /** The arguments of `podman run -d` for these options, with a fresh name and HTTP port. */
    async argv(options: RunOptions = {}): Promise<{ name: string; port: number; argv: string[] }> {
      const name = `dfw-test-${process.pid}-c${++counter}`;
      const port = await freePort();
      const env = {
        LOG_FORMAT: 'json',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(port),
        ...options.env,
      };
      const argv = [
        '--runtime',
        RUNTIME,
        'run',
        '-d',
        '--name',
        name,
        '--label',
        LABEL,
        '--network=host',
        ...ULIMITS,
        ...(options.healthcheck ? [] : ['--no-healthcheck']),
        ...(options.user ? ['--user', options.user] : []),
        ...(options.readOnly ? ['--read-only', '--read-only-tmpfs=false'] : []),
        ...(options.volume ? ['-v', `${options.volume}:/data`] : []),
        ...(options.entrypoint ? ['--entrypoint', options.entrypoint] : []),
        ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
        ...(options.extra ?? []),
        IMAGE,
        ...(options.args ?? []),
      ];
      containers.add(name);
      return { name, port, argv };
    },

    /** `podman run -d`: resolves once podman has started the container. */
    async run(options: RunOptions = {}): Promise<Container> {
      const { name, port, argv } = await this.argv(options);
      await podmanOk(argv);
      return container(name, port, `podman ${argv.join(' ')}`);
    },

    container,
  };
}

/** A handle on a started container. */
export function container(name: string, port: number, command = name): Container {
  const logs = async () => {
    const { stdout, stderr } = await podman(['logs', name]);
    return { stdout, stderr };
  };
  const status = async () =>
    (await podmanOk(['inspect', '--format', '{{.State.Status}}', name])).trim();
  const exited = async (timeoutMs = 60_000) => {
    const result = await podman(['wait', name], timeoutMs);
    if (result.code !== 0) {
      throw new Error(`${name} did not exit within ${timeoutMs} ms (${result.stderr.trim()})`);
    }
    return Number(result.stdout.trim());
  };
  const lines = async () => parseLines((await logs()).stdout);
  return {
    name,
    port,
    command,
    logs,
    lines,
    byEvent: async (event) => (await lines()).filter((line) => line.event === event),
    exited,
    status,
    async waitFor(predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { stdout, stderr } = await logs();
        const found = parseLines(stdout).find(predicate);
        if (found) return found;
        const state = await status();
        if (state !== 'running' && state !== 'created' && state !== 'configured') {
          throw new Error(
            `${name} is ${state} before the log line; stderr: ${stderr.slice(-2000)}`,
          );
        }
        if (Date.now() > deadline) {
          throw new Error(
            `timed out waiting for a log line of ${name}; stderr: ${stderr.slice(-2000)}`,
          );
        }
        await sleep(200);
      }
    },
  };
}

/** GET http://127.0.0.1:port/path; the status, or 0 if nothing answered within `timeoutMs`. */
export async function httpStatus(port: number, path: string, timeoutMs = 1_000): Promise<number> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}
