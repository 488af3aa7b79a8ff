import { describe, expect, it } from '@jest/globals';
import { RUN_STATUSES } from '../../src/dataframer/schema.js';
import { createMetrics, statusLabel } from '../../src/http/metrics.js';

describe('metrics labels', () => {
  it('give the runs gauge a bounded status label: the five known ones or unknown', async () => {
    const metrics = createMetrics();
    metrics.observe({
      runsByStatus: () =>
        new Map([
          ['PROCESSING', 2],
          ['UNKNOWN', 1],
          ['IN_PROGRESS', 3],
          ['Z'.repeat(100_000), 4],
        ]),
      pendingDeliveries: () => 0,
      oldestPendingDeliveryAt: () => null,
      lastTickAt: () => null,
      now: () => 0,
    });
    const { body } = await metrics.render();
    const runs = body.split('\n').filter((line) => line.startsWith('dataframer_watcher_runs{'));
    expect(runs.sort()).toEqual([
      'dataframer_watcher_runs{status="PROCESSING"} 2',
      'dataframer_watcher_runs{status="unknown"} 8',
    ]);
    expect(body).not.toContain('ZZZZ');
  });

  it('keeps every known status as it is', () => {
    for (const status of RUN_STATUSES) expect(statusLabel(status)).toBe(status);
    expect(statusLabel('in_progress')).toBe('unknown');
  });
});
