import { describe, expect, it } from '@jest/globals';
import { EVENTS, createLogger, logEvent } from '../../src/logging.js';
import { MAX_TEXT_CHARS, clip } from '../../src/util/text.js';
import { createLogSink } from '../helpers/log-sink.js';

const KEY = 'df_live_7c1e0b9a55d2';
const SECRET = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0';

const jsonLogger = (sink: ReturnType<typeof createLogSink>) =>
  createLogger({ level: 'info', format: 'json', secrets: [], destination: sink.stream });

describe('createLogger', () => {
  it('writes the event line shape: string level, ISO time, event, run_id, msg', () => {
    const sink = createLogSink();
    logEvent(jsonLogger(sink), {
      level: 'warn',
      event: 'poll.failed',
      runId: 'r1',
      msg: 'poll failed',
      fields: { error: { code: 'TRANSIENT' } },
    });
    const [line] = sink.lines();
    expect(line).toEqual({
      level: 'warn',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      event: 'poll.failed',
      run_id: 'r1',
      error: { code: 'TRANSIENT' },
      msg: 'poll failed',
    });
  });

  it('scrubs secrets wherever they appear, in messages, nested fields and errors', () => {
    const sink = createLogSink();
    const logger = createLogger({
      level: 'info',
      format: 'json',
      secrets: [KEY, SECRET],
      destination: sink.stream,
    });
    logger.error(
      {
        err: new Error(`request failed with Bearer ${KEY}`),
        deep: { headers: { authorization: `Bearer ${KEY}` }, s: SECRET },
      },
      `key ${KEY}`,
    );
    logger.info({ apiKey: KEY, webhookSecret: SECRET }, 'config');
    const text = sink.raw.join('\n');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(SECRET);
    expect(text).toContain('[REDACTED]');
    expect(sink.lines()).toHaveLength(2);
  });
});

describe('logEvent bounds', () => {
  it('cuts every string of an event to MAX_TEXT_CHARS, however deep', () => {
    const sink = createLogSink();
    const huge = 'x'.repeat(100_000);
    logEvent(jsonLogger(sink), {
      level: 'warn',
      event: 'poll.failed',
      runId: 'r1',
      msg: 'poll failed',
      fields: { error: { code: 'INTERNAL', message: huge }, list: [huge, { deeper: huge }] },
    });
    expect(sink.raw[0]!.length).toBeLessThan(4 * MAX_TEXT_CHARS);
    const [line] = sink.lines();
    expect(line?.['error']).toEqual({ code: 'INTERNAL', message: clip(huge) });
    expect(clip(huge)).toHaveLength(MAX_TEXT_CHARS);
    expect(clip(huge).endsWith('…')).toBe(true);
    expect(clip('short')).toBe('short');
  });

  it('knows run.field_invalid', () => {
    expect(EVENTS).toContain('run.field_invalid');
  });
});
