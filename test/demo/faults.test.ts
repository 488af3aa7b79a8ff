import { describe, expect, it } from '@jest/globals';
import { drawFault, faultLabel } from '../../src/demo/faults.js';
import { mulberry32, uuidFrom } from '../../src/demo/random.js';

describe('drawFault', () => {
  it('meets no fault with no rates, every request slow at slowRate 1', () => {
    const random = mulberry32(1);
    for (let i = 0; i < 100; i++)
      expect(drawFault(random, {})).toMatchObject({ slow: false, delayMs: 0, kind: null });
    expect(drawFault(random, { slowRate: 1, slowMs: 25 })).toMatchObject({
      slow: true,
      delayMs: 25,
      kind: null,
    });
  });

  it('hits each fault at about its rate', () => {
    const random = mulberry32(2);
    let hits = 0;
    for (let i = 0; i < 10_000; i++)
      if (drawFault(random, { rateLimitRate: 0.2 }).kind === 'rate_limit') hits++;
    expect(hits / 10_000).toBeGreaterThan(0.18);
    expect(hits / 10_000).toBeLessThan(0.22);
  });

  it('draws a fixed number of values, so a request fate depends on its index, not on earlier rates', () => {
    const a = mulberry32(3);
    const b = mulberry32(3);
    drawFault(a, {});
    drawFault(b, { serverErrorRate: 1, slowRate: 1 });
    expect(drawFault(a, { malformedRate: 0.5 })).toEqual(drawFault(b, { malformedRate: 0.5 }));
  });

  it('labels slow and the fault together', () => {
    expect(faultLabel({ slow: true, delayMs: 5, kind: 'reset', detail: 0 })).toBe('slow+reset');
    expect(faultLabel({ slow: false, delayMs: 0, kind: null, detail: 0 })).toBeNull();
  });
});

describe('uuidFrom', () => {
  it('is deterministic for a seed', () => {
    expect(uuidFrom(mulberry32(10))).toBe(uuidFrom(mulberry32(10)));
    expect(uuidFrom(mulberry32(10))).not.toBe(uuidFrom(mulberry32(11)));
  });
});
