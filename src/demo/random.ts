/**
 * A tiny seeded PRNG, so a demo scenario, its run details and its faults replay identically
 * from one number. Not for anything secret.
 */
export type Random = () => number;

/** mulberry32: 32 bits of state, good enough spread for test data, uniform in [0, 1). */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a: turns a run id into a seed, so a run's details depend on the run alone. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** An integer in [min, max], both ends included. */
export function intBetween(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function numberBetween(random: Random, min: number, max: number): number {
  return min + random() * (max - min);
}

export function pick<T>(random: Random, items: readonly [T, ...T[]]): T {
  return items[Math.floor(random() * items.length)] ?? items[0];
}

/** A key chosen with probability proportional to its weight; weights must sum above 0. */
export function weightedPick<K extends string>(
  random: Random,
  weights: readonly (readonly [K, number])[],
): K {
  const total = weights.reduce((sum, [, weight]) => sum + weight, 0);
  let point = random() * total;
  for (const [key, weight] of weights) {
    if (point < weight) return key;
    point -= weight;
  }
  // Rounding can leave `point` a hair above the last bucket; the last positive weight wins.
  const last = weights.findLast(([, weight]) => weight > 0);
  if (!last) throw new RangeError('weightedPick needs at least one positive weight');
  return last[0];
}

/** A UUID v4-shaped id (version nibble 4, RFC 4122 variant) drawn from the PRNG. */
export function uuidFrom(random: Random): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = (8 + Math.floor(random() * 4)).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** Lower-case hex of `length` digits, for file ids and the like. */
export function hexFrom(random: Random, length: number): string {
  return Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
}
