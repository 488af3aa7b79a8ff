import { describe, expect, it } from '@jest/globals';
import { formatEventLine } from '../../src/demo/event-line.js';

const data = {
  run_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
  status: 'CANCELED',
  samples_completed: 40,
  samples_failed: 0,
  total_cost: 0.5,
  generated_files: [{ id: 'f1', path: 'out/data.csv' }],
};

describe('formatEventLine', () => {
  it('shows type, short run id, status, samples, cost and file count', () => {
    expect(formatEventLine({ type: 'run.canceled', data })).toBe(
      '⊘ run.canceled 3c90c3cc… CANCELED 40 ok / 0 failed $0.50 1 file',
    );
  });

  it('shows dashes for what the watcher did not know', () => {
    const unknown = {
      ...data,
      status: null,
      samples_completed: null,
      samples_failed: null,
      total_cost: null,
      generated_files: [],
    };
    expect(formatEventLine({ type: 'run.watch_timeout', data: unknown })).toBe(
      '⧗ run.watch_timeout 3c90c3cc… - - ok / - failed $- 0 files',
    );
  });

  it('still prints something for a body in another shape', () => {
    expect(formatEventLine({ type: 'run.new_kind' })).toBe(
      '• run.new_kind (body not in the documented shape)',
    );
    expect(formatEventLine([1, 2])).toBe('• unknown (body not in the documented shape)');
  });
});
