import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { WatcherProcess } from '../helpers/watcher-process.js';
import { tempDir, useWorld } from '../helpers/world.js';

/**
 * One watcher per state directory, held by the kernel: across pid namespaces (two containers on
 * one volume), after kill -9 of the whole tree, and with a dead watcher left as a zombie.
 */

const world = useWorld();
/**
 * A pid namespace of its own, as a container has: the watcher is its pid 1 (and is killed
 * with unshare, so a failed test leaves nothing behind).
 */
const CONTAINER = ['unshare', '--fork', '--pid', '--mount-proc', '--kill-child'];

/** The pids of a process's direct children (Linux). */
function childPids(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(/\s+/).map(Number);
}

function processState(pid: number): string | null {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The env of a watcher that keeps running: one run of ten minutes, no exit when done. */
async function longRunEnv() {
  const { env } = await world.scenario({
    runs: { seed: 1, count: 1, minDurationMs: 600_000, maxDurationMs: 600_000 },
    receivers: [],
    env: { EXIT_WHEN_DONE: 'false', STATE_DIR: tempDir('watcher-lock-') },
    watcher: false,
  });
  return env;
}

const started = (watcher: WatcherProcess) =>
  watcher.waitFor((line) => line.event === 'watcher.started');

function expectRefused(refused: WatcherProcess): void {
  expect(refused.stderr()).toMatch(
    /^dataframer-run-watcher: state directory .* is in use by another watcher[^\n]*\n$/,
  );
  expect(refused.stdout()).toBe('');
}

describe('the state directory lock', () => {
  it('refuses a second watcher in another pid namespace (both are pid 1), and takes over at once after kill -9 of the tree', async () => {
    const env = await longRunEnv();
    const first = world.watcher(env, { wrap: CONTAINER });
    await started(first);

    const second = world.watcher(env, { wrap: CONTAINER });
    expect(await second.exited).toBe(75);
    expectRefused(second);

    // kill -9 the whole tree: unshare and the watcher it forked.
    const unsharePid = first.child.pid!;
    const tree = [unsharePid, ...childPids(unsharePid)];
    expect(tree).toHaveLength(2);
    tree.forEach((pid) => process.kill(pid, 'SIGKILL'));
    await first.exited;

    const third = world.watcher(env, { wrap: CONTAINER });
    await started(third);
    // unshare ignores SIGTERM while it waits; a container runtime signals pid 1 itself.
    process.kill(childPids(third.child.pid!)[0]!, 'SIGTERM');
    expect(await third.exited).toBe(0);
  });

  it('refuses `deliveries list` while a watcher runs, and allows it once the watcher stopped', async () => {
    const env = await longRunEnv();
    const watcher = world.watcher(env);
    await started(watcher);

    const list = world.deliveries(env['STATE_DIR']!, 'list');
    expect(await list.exited).toBe(75);
    expectRefused(list);

    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
    const after = world.deliveries(env['STATE_DIR']!, 'list');
    expect(await after.exited).toBe(0);
  });

  it('takes over from a killed watcher that lingers as a zombie (its parent never reaps it)', async () => {
    const env = await longRunEnv();
    // `exec sleep`: the shell becomes a parent that never waits for the watcher it started.
    const parent = world.watcher(env, { wrap: ['sh', '-c', '"$@" & exec sleep 600', 'sh'] });
    try {
      await started(parent);
    } finally {
      // The watcher is the shell's child, not ours: end it here whatever happened.
      for (const pid of childPids(parent.child.pid!)) process.kill(pid, 'SIGKILL');
    }
    const [watcherPid] = childPids(parent.child.pid!);
    for (let i = 0; i < 100 && processState(watcherPid!) !== 'Z'; i += 1)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(processState(watcherPid!)).toBe('Z');

    const next = world.watcher(env);
    await started(next);
    next.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  });
});
