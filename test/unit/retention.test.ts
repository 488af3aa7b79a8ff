import { describe, expect, it, jest } from '@jest/globals';
import { createLogger } from '../../src/logging.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startRetention } from '../../src/store/retention.js';
import { newRunRecord } from '../../src/domain/run.js';
import { createLogSink } from '../helpers/log-sink.js';
import { useFakeClock } from '../helpers/fake-clock.js';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

useFakeClock(100 * DAY);

function finishedAt(runId: string, at: number) {
  return { ...newRunRecord(runId, at, at), finishedAt: at, outcome: 'run.succeeded' as const };
}

describe('startRetention', () => {
  it('prunes at start and every hour, keeps listed runs, and logs what it pruned', async () => {
    const store = new MemoryStore();
    const sink = createLogSink();
    store.finishRun(finishedAt('old', Date.now() - 31 * DAY), []);
    store.finishRun(finishedAt('old-listed', Date.now() - 31 * DAY), []);
    store.finishRun(finishedAt('recent', Date.now() - 30 * DAY + HOUR / 2), []);
    const stop = startRetention({
      store,
      retentionMs: 30 * DAY,
      keepRunIds: () => new Set(['old-listed']),
      logger: createLogger({
        level: 'info',
        format: 'json',
        secrets: [],
        destination: sink.stream,
      }),
      now: Date.now,
    });
    expect(store.getRun('old')).toBeUndefined();
    expect(store.getRun('old-listed')).toBeDefined();
    expect(sink.byEvent('store.pruned')).toEqual([
      expect.objectContaining({ runs: 1, deliveries: 0 }),
    ]);

    await jest.advanceTimersByTimeAsync(HOUR);
    expect(store.getRun('recent')).toBeUndefined(); // past the retention an hour later
    expect(sink.byEvent('store.pruned')).toHaveLength(2);

    stop();
    store.finishRun(finishedAt('later', Date.now() - 31 * DAY), []);
    await jest.advanceTimersByTimeAsync(2 * HOUR);
    expect(store.getRun('later')).toBeDefined(); // stopped: no more pruning
  });
});
