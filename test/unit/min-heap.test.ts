import { describe, expect, it } from '@jest/globals';
import { MinHeap } from '../../src/util/min-heap.js';

describe('MinHeap', () => {
  it('pops in key order, whatever the push order', () => {
    const heap = new MinHeap<string>();
    const keys = [5, 3, 9, 1, 7, 3, 0, 8, 2, 6, 4];
    keys.forEach((k) => heap.push(k, `v${k}`));
    expect(heap.size).toBe(keys.length);
    expect(heap.peekKey()).toBe(0);
    const out: (string | undefined)[] = [];
    while (heap.size > 0) out.push(heap.pop());
    expect(out).toEqual([...keys].sort((a, b) => a - b).map((k) => `v${k}`));
    expect(heap.pop()).toBeUndefined();
  });
});
