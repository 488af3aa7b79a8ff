import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { API_KEY, SECRET, useWorld } from '../helpers/world.js';

const world = useWorld();

/** Sum of a metric's samples whose labels contain `labels` (text exposition format). */
function metricValue(text: string, name: string, labels = ''): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/**
 * promtool comes from Debian's `prometheus` package, which .ci/run installs. On a developer
 * machine without it the lint step is skipped with a note; in CI its absence fails the test.
 */
function promtoolCheck(text: string): string | null {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (result.error) {
    if (process.env['CI'] === 'true')
      throw new Error('promtool is required in CI (apt-get install prometheus)');
    console.warn('promtool not installed: skipping `promtool check metrics`');
    return null;
  }
  return `${result.status} ${result.stdout}${result.stderr}`.trim();
}

/** A clock that stands still until `release()`, then runs on from where it stood. */
function heldClock() {
  const heldAt = Date.now();
  let offset: number | null = null;
  return {
    now: () => (offset === null ? heldAt : Date.now() - offset),
    release: () => {
      offset = Date.now() - heldAt;
    },
  };
}

describe('end to end: health, readiness and metrics', () => {
  it('answers probes, lints clean with promtool, and its metrics move as runs finish', async () => {
    // The API's clock is held until the first metrics are read: no run can have finished then,
    // however slowly the watcher started.
    const clock = heldClock();
    const { scenario, ids, watcher } = await world.scenario({
      runs: { seed: 5, count: 5, minDurationMs: 1_000, maxDurationMs: 2_500 },
      clock: clock.now,
      receivers: [{ query: 'token=abc' }],
      env: { EXIT_WHEN_DONE: 'false' },
    });
    const started = await watcher.waitFor((l) => l.event === 'watcher.started');
    const base = `http://127.0.0.1:${String(started['http_port'])}`;

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const before = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(before, 'dataframer_watcher_runs_finished_total')).toBe(0);
    clock.release();

    await watcher.waitFor(() => watcher.byEvent('webhook.delivered').length === ids.length, 30_000);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', reasons: [] });

    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const after = await response.text();
    expect(metricValue(after, 'dataframer_watcher_runs_finished_total')).toBe(ids.length);
    const succeeded = scenario.runs.filter((r) => r.outcome === 'SUCCEEDED').length;
    expect(
      metricValue(after, 'dataframer_watcher_runs_finished_total', 'outcome="run.succeeded"'),
    ).toBe(succeeded);
    expect(
      metricValue(after, 'dataframer_watcher_webhook_deliveries_total', 'outcome="delivered"'),
    ).toBe(ids.length);
    expect(
      metricValue(after, 'dataframer_watcher_polls_total', 'outcome="ok"'),
    ).toBeGreaterThanOrEqual(ids.length);
    expect(metricValue(after, 'dataframer_watcher_poll_duration_seconds_count')).toBe(
      metricValue(after, 'dataframer_watcher_polls_total'),
    );
    expect(metricValue(after, 'dataframer_watcher_runs')).toBe(0);
    expect(metricValue(after, 'dataframer_watcher_deliveries_pending')).toBe(0);
    expect(metricValue(after, 'dataframer_watcher_seconds_since_last_tick')).toBeLessThan(5);
    expect(after).toContain('dataframer_watcher_process_resident_memory_bytes');
    for (const leak of [API_KEY, SECRET, 'token=abc', '127.0.0.1'])
      expect(after).not.toContain(leak);

    const lint = promtoolCheck(after);
    if (lint !== null) expect(lint).toBe('0');

    watcher.kill('SIGTERM');
    expect(await watcher.exited).toBe(0);
  });
});
