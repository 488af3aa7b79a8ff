import { describe, expect, it } from '@jest/globals';
import { EVENTS } from '../../src/logging.js';
import {
  RULES,
  stepAfterAttempt,
  stepBeforeAttempt,
  type BeforeAttempt,
} from '../../src/notify/delivery-rules.js';
import type { AttemptResult } from '../../src/notify/webhook-sender.js';

const sendable: BeforeAttempt = {
  receiverConfigured: true,
  receiverDisabled: false,
  attempts: 0,
  retries: 3,
  lastError: null,
};

describe('delivery rules: before an attempt', () => {
  it.each<[string, Partial<BeforeAttempt>, string | null, string | null]>([
    ['a first attempt is made', {}, null, null],
    ['the last allowed attempt is made', { attempts: 3 }, null, null],
    [
      'a receiver taken out of the config leaves a dead letter',
      { receiverConfigured: false },
      'dead_lettered',
      'receiver no longer configured',
    ],
    [
      'a receiver that answered 410 is not tried again',
      { receiverDisabled: true },
      'disabled',
      'receiver disabled by 410',
    ],
    [
      'every attempt made, the last cut short: a dead letter keeping that error',
      { attempts: 4, lastError: 'attempt interrupted' },
      'dead_lettered',
      'attempt interrupted',
    ],
  ])('%s', (_name, situation, state, error) => {
    const step = stepBeforeAttempt({ ...sendable, ...situation });
    expect(step?.state ?? null).toBe(state);
    expect(step?.error ?? null).toBe(error);
  });

  it('a missing receiver wins over a disabled one and over spent attempts', () => {
    const step = stepBeforeAttempt({
      ...sendable,
      receiverConfigured: false,
      receiverDisabled: true,
      attempts: 9,
    });
    expect(step?.msg).toBe(RULES.noReceiver.msg);
  });
});

describe('delivery rules: after an attempt', () => {
  const retry: AttemptResult = { kind: 'retry', reason: 'HTTP 503', retryAfterMs: null };
  it.each<[string, AttemptResult, number | null, string, string | null, number | undefined]>([
    ['2xx: delivered', { kind: 'delivered', status: 204 }, null, 'delivered', null, undefined],
    [
      '410: the receiver is disabled',
      { kind: 'disabled', status: 410 },
      null,
      'disabled',
      'HTTP 410',
      undefined,
    ],
    [
      '4xx: rejected, kept for replay',
      { kind: 'rejected', reason: 'HTTP 400' },
      null,
      'dead_lettered',
      'HTTP 400',
      undefined,
    ],
    ['retryable with a retry left: pending until then', retry, 5_000, 'pending', 'HTTP 503', 5_000],
    [
      'retryable with the schedule spent: a dead letter',
      retry,
      null,
      'dead_lettered',
      'HTTP 503',
      undefined,
    ],
  ])('%s', (_name, result, retryAt, state, error, nextAttemptAt) => {
    const step = stepAfterAttempt(result, retryAt);
    expect(step).toMatchObject({ state, error });
    expect(step.nextAttemptAt).toBe(nextAttemptAt);
  });
});

describe('the rules table', () => {
  it('logs every step as a known event, at a level matching its state', () => {
    for (const rule of Object.values(RULES)) {
      expect(EVENTS).toContain(rule.event);
      const expected =
        rule.state === 'dead_lettered' ? 'error' : rule.state === 'delivered' ? 'info' : 'warn';
      expect(rule.level).toBe(expected);
    }
  });
});
