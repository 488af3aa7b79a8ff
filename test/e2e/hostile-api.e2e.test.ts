import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from '@jest/globals';
import { MB, startBodyServer, type BodyPlan } from '../integration/body-server.js';
import { runBody } from '../helpers/run-body.js';
import { API_KEY, SECRET, deliveredRunIds, useWorld, watchEnv } from '../helpers/world.js';

// The built program against an API that answers 200 with what no spec promised: a body far
// too large, off-spec optional fields, tens of thousands of files.

const world = useWorld();
/** Above the request and webhook timeouts, as the config requires; no test waits for it. */
const ENV = { SHUTDOWN_GRACE_MS: '20000' };
const RUN = '5f0c3a2e-7b1d-4c8e-9a6f-2d4b8e1c3a70';

let closeApi: (() => Promise<void>) | null = null;
afterEach(async () => {
  await closeApi?.();
  closeApi = null;
});

async function api(plan: () => BodyPlan): Promise<string> {
  const server = await startBodyServer(plan);
  closeApi = server.close;
  return server.url;
}

const json = (body: unknown): BodyPlan => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  prefix: JSON.stringify(body),
});

/** Peak resident memory of a process, in MB (Linux). */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error('no VmHWM in /proc/<pid>/status');
  return Number(kb) / 1024;
}

describe('end to end: what a 200 may hold', () => {
  it('reads at most MAX_RESPONSE_BYTES (5 MiB here) of a 200 MB body: poll.failed RESPONSE_TOO_LARGE, still running, memory small', async () => {
    const url = await api(() => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      prefix: `{"id":"${RUN}","status":"PROCESSING","spec_name":"`,
      fillBytes: 200 * MB,
    }));
    const watcher = world.watcher(
      watchEnv(url, [RUN], [], {
        ...ENV,
        EXIT_WHEN_DONE: 'false',
        MAX_RESPONSE_BYTES: String(5 * MB),
      }),
    );

    // Two failed polls: the first one did not stop the watcher from looking again.
    await watcher.waitFor(() => watcher.byEvent('poll.failed').length >= 2, 30_000);
    const failed = watcher.byEvent('poll.failed');
    for (const line of failed) {
      expect(line).toMatchObject({
        level: 'warn',
        run_id: RUN,
        error: { code: 'RESPONSE_TOO_LARGE', status: 200, limit_bytes: 5 * MB },
      });
    }
    expect(watcher.child.exitCode).toBeNull();
    expect(peakRssMb(watcher.child.pid!)).toBeLessThan(300);

    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  });

  it('finishes a SUCCEEDED run with total_cost "1.37", spec_version null and 200,000 files (an 8 MB body), and delivers it', async () => {
    const files = Array.from({ length: 200_000 }, (_, i) => ({
      id: `f${i}`,
      path: `out/${i}.csv`,
    }));
    const url = await api(() =>
      json(
        runBody({
          id: RUN,
          status: 'SUCCEEDED',
          total_cost: '1.37',
          spec_version: null,
          generated_files: files,
        }),
      ),
    );
    const { receiver, url: hook } = await world.receiver();
    const watcher = world.watcher(watchEnv(url, [RUN], [hook], ENV));

    const first = await watcher.waitFor(
      (l) => l.event === 'run.finished' || l.event === 'poll.failed',
    );
    expect(first.event).toBe('run.finished');
    expect(await watcher.exited).toBe(0);
    expect(watcher.byEvent('poll.failed')).toEqual([]);
    expect(
      watcher
        .byEvent('run.field_invalid')
        .map((l) => [l.level, l['field']])
        .sort(),
    ).toEqual([
      ['warn', 'spec_version'],
      ['warn', 'total_cost'],
    ]);
    const [finished] = watcher.byEvent('run.finished');
    expect(finished).toMatchObject({
      status: 'SUCCEEDED',
      total_cost: null,
      generated_files_total: 200_000,
      generated_files_truncated: true,
    });
    expect(finished?.['generated_files']).toHaveLength(20);
    expect(
      watcher
        .stdout()
        .split('\n')
        .every((line) => line.length < 10_000),
    ).toBe(true);

    expect(deliveredRunIds(receiver)).toEqual([RUN]);
    const data = (receiver.deliveries[0]?.body as { data: Record<string, unknown> }).data;
    expect(data).toMatchObject({
      status: 'SUCCEEDED',
      total_cost: null,
      spec_version: null,
      generated_files_total: 200_000,
      generated_files_truncated: true,
    });
    expect(data['generated_files']).toHaveLength(1_000);
    const written = watcher.stdout() + watcher.stderr();
    expect(written).not.toContain(API_KEY);
    expect(written).not.toContain(SECRET);
  });
});
