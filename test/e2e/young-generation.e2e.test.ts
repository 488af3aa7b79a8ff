import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { startWatcher } from '../helpers/watcher-process.js';

/** The node flags of a live process, as the kernel has them (Linux). */
function nodeArgs(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
}

async function argsOfStartedWatcher(env: Record<string, string>): Promise<string[]> {
  const watcher = startWatcher({ DATAFRAMER_API_KEY: 'test-key', ...env });
  try {
    await watcher.waitFor((line) => line.event === 'watcher.started');
    return nodeArgs(watcher.child.pid!);
  } finally {
    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  }
}

describe('the entry point caps V8 young generation (same process)', () => {
  it('runs with 8 MB semi-spaces by default, under the pid it was started as', async () => {
    const args = await argsOfStartedWatcher({});
    expect(args[0]).toBe('--max-semi-space-size=8');
    expect(args.at(-1)).toMatch(/dist\/main\.js$/);
  });

  it('keeps the size an operator chose in NODE_OPTIONS', async () => {
    const args = await argsOfStartedWatcher({ NODE_OPTIONS: '--max-semi-space-size=16' });
    expect(args.some((arg) => arg.startsWith('--max-semi-space-size'))).toBe(false);
  });
});
