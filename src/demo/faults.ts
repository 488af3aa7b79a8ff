import { z } from 'zod';
import type { Random } from './random.js';

/** Each rate is the probability (0..1), per authorized request for an existing run, of that fault. */
export interface Faults {
  serverErrorRate?: number;
  rateLimitRate?: number;
  /** Sent in `Retry-After` with 429 (and with some 503s); default 1. */
  retryAfterSeconds?: number;
  slowRate?: number;
  slowMs?: number;
  resetRate?: number;
  malformedRate?: number;
  schemaBreakRate?: number;
  /** The list endpoint answers 503 to every request while this is true (its outage). */
  listUnavailable?: boolean;
}

// exactOptional: the key may be absent but never `undefined`, matching exactOptionalPropertyTypes.
const Rate = z.number().min(0).max(1).exactOptional();

/** Strict, so `--faults '{"serverErrrorRate":1}'` fails loudly instead of doing nothing. */
export const Faults = z.strictObject({
  serverErrorRate: Rate,
  rateLimitRate: Rate,
  retryAfterSeconds: z.number().int().nonnegative().exactOptional(),
  slowRate: Rate,
  slowMs: z.number().int().nonnegative().exactOptional(),
  resetRate: Rate,
  malformedRate: Rate,
  schemaBreakRate: Rate,
  listUnavailable: z.boolean().exactOptional(),
}) satisfies z.ZodType<Faults>;

export type FaultKind = 'reset' | 'server_error' | 'rate_limit' | 'malformed' | 'schema_break';

export interface FaultDraw {
  slow: boolean;
  /** Delay before answering (0 when the request is not slow). */
  delayMs: number;
  /** At most one fault that changes the answer; the earliest in FAULT_ORDER wins. */
  kind: FaultKind | null;
  /** A second draw for details: which 5xx, whether a 503 says Retry-After, which field breaks. */
  detail: number;
}

type RateKey =
  'resetRate' | 'serverErrorRate' | 'rateLimitRate' | 'malformedRate' | 'schemaBreakRate';

const FAULT_ORDER: readonly (readonly [FaultKind, RateKey])[] = [
  ['reset', 'resetRate'],
  ['server_error', 'serverErrorRate'],
  ['rate_limit', 'rateLimitRate'],
  ['malformed', 'malformedRate'],
  ['schema_break', 'schemaBreakRate'],
];

/**
 * Decides one request's faults. It always draws the same number of values, so with one seed
 * the n-th request meets the same fate whatever the rates of the earlier ones were.
 */
export function drawFault(random: Random, faults: Faults): FaultDraw {
  const slow = random() < (faults.slowRate ?? 0);
  let kind: FaultKind | null = null;
  for (const [candidate, rateKey] of FAULT_ORDER) {
    const hit = random() < (faults[rateKey] ?? 0);
    if (hit && kind === null) kind = candidate;
  }
  return { slow, delayMs: slow ? (faults.slowMs ?? 2_000) : 0, kind, detail: random() };
}

/** Label stored in the request log: `slow`, a fault kind, or both as `slow+kind`. */
export function faultLabel(draw: FaultDraw): string | null {
  const parts = [...(draw.slow ? ['slow'] : []), ...(draw.kind ? [draw.kind] : [])];
  return parts.length > 0 ? parts.join('+') : null;
}

/** A body that is valid JSON but breaks the Run schema in a way a real regression might. */
export function breakSchema(
  body: Record<string, unknown>,
  detail: number,
): Record<string, unknown> {
  const variant = Math.floor(detail * 3);
  if (variant === 0) return { ...body, status: 2 };
  if (variant === 1) return { ...body, samples_completed: String(body['samples_completed']) };
  return { ...body, created_at: 'yesterday' };
}
