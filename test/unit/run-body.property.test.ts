import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DataFramerError } from '../../src/dataframer/errors.js';
import { parseRunBody } from '../../src/dataframer/parse-run.js';
import { newRunRecord, type RunRecord } from '../../src/domain/run.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { applyPoll, type PollContext, type PollOutcome } from '../../src/watch/run-state.js';
import { exampleRun } from '../helpers/run-body.js';

// Whatever the API sends in a 200, the client's parsing and the run's state machine give a run
// or a classified error, never a crash, a hang, or a due time that is not a number.

const RUN_ID = exampleRun.id;
const DEEP = '"__deep__"';

/** Values of the wrong kind for any field of the spec. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  fc.boolean(),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double(),
  fc.constantFrom(-1, -0, 1.5, 2 ** 53, 1e308, Number.MAX_SAFE_INTEGER),
  fc.string({ maxLength: 20 }),
  fc.integer().map(String), // numbers as strings
  fc.constantFrom('', 'NaN', 'Infinity', '1.37', 'yesterday', '2023-11-07T05:31:56Z'),
  fc.uuid(),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'x'.repeat(n)), // huge strings
  fc.constant(DEEP.slice(1, -1)), // replaced by deep nesting once serialised
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const FILE_KEYS = ['id', 'path', 'file_type', 'size_bytes'];
const PARAM_KEYS = Object.keys(exampleRun.runtime_params);
const TOP_KEYS = Object.keys(exampleRun);

/** Where a mutation lands: a field of the run, of its runtime_params, or of a generated file. */
const target = fc.oneof(
  fc.constantFrom(...TOP_KEYS).map((key) => [key]),
  fc.constantFrom(...PARAM_KEYS).map((key) => ['runtime_params', key]),
  fc.tuple(fc.nat(3), fc.constantFrom(...FILE_KEYS)).map(([i, key]) => ['generated_files', i, key]),
  fc.string({ maxLength: 8 }).map((key) => [key]), // extra fields
);

type Mutation = { path: (string | number)[]; op: 'delete' | 'set'; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  path: target,
  op: fc.constantFrom('delete' as const, 'set' as const),
  value: oddValue,
});

function mutate(mutations: Mutation[], fileCount: number): Record<string, unknown> {
  const body = structuredClone(exampleRun) as Record<string, unknown>;
  const file = (exampleRun['generated_files'] as unknown[])[0];
  body['generated_files'] = Array.from({ length: fileCount }, () => structuredClone(file));
  for (const { path, op, value } of mutations) {
    let parent: unknown = body;
    for (const key of path.slice(0, -1)) {
      parent = (parent as Record<string | number, unknown> | null)?.[key];
    }
    if (typeof parent !== 'object' || parent === null) continue;
    const last = path.at(-1)!;
    if (op === 'delete') delete (parent as Record<string | number, unknown>)[last];
    else (parent as Record<string | number, unknown>)[last] = value;
  }
  return body;
}

/** How the mutated run is put on the wire: as JSON, or broken on the way. */
const wire = fc.oneof(
  { weight: 6, arbitrary: fc.constant((text: string) => text) },
  fc.nat().map((n) => (text: string) => text.slice(0, n % (text.length + 1))), // cut short
  fc.string({ maxLength: 10 }).map((junk) => (text: string) => junk + text), // junk before
  fc.constant((text: string) => text.replaceAll('"', "'")), // not JSON
  fc.constant(() => 'NaN'),
);

const body: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.array(mutation, { maxLength: 6 }),
        fc.oneof(
          { weight: 20, arbitrary: fc.nat(3) },
          fc.integer({ min: 1_000, max: 2_000 }), // past the caps of a webhook and a log line
        ),
        fc.integer({ min: 1, max: 20_000 }),
        wire,
      )
      .map(([mutations, files, depth, send]) =>
        send(
          JSON.stringify(mutate(mutations, files)).replaceAll(
            DEEP,
            '['.repeat(depth) + ']'.repeat(depth),
          ),
        ),
      ),
  },
  fc.jsonValue().map((value) => JSON.stringify(value)), // any JSON at all
  fc.string({ maxLength: 200 }), // any text at all
);

/** The record a body meets: a fresh run, or one already watched with progress measured. */
const before: fc.Arbitrary<RunRecord> = fc.oneof(
  fc.constant(newRunRecord(RUN_ID, 0, 0)),
  fc.nat(100).map((done) => {
    const start = newRunRecord(RUN_ID, 0, 0);
    const run = { id: RUN_ID, status: 'PROCESSING', runtime_params: { number_of_samples: 100 } };
    const a = applyPoll(start, { ok: true, run: { ...run, samples_completed: 0 } }, ctx(1_000));
    return applyPoll(a.record, { ok: true, run: { ...run, samples_completed: done } }, ctx(2_000))
      .record;
  }),
);

function ctx(now: number): PollContext {
  return {
    now,
    timing: { minMs: 1_000, maxMs: 60_000 },
    notFoundAfterMs: 600_000,
    random: () => 0.5,
  };
}

describe('any 200 body', () => {
  it('parses or fails with a classified error, and the state machine stays sound', () => {
    let parsed = 0;
    let failed = 0;
    fc.assert(
      fc.property(body, before, (text, record) => {
        let outcome: PollOutcome;
        try {
          const { run, invalidFields } = parseRunBody(text, RUN_ID);
          outcome = { ok: true, run, invalidFields };
          parsed += 1;
        } catch (error) {
          expect(error).toBeInstanceOf(DataFramerError);
          expect((error as DataFramerError).code).toEqual(expect.any(String));
          outcome = { ok: false, error };
          failed += 1;
        }
        const t = applyPoll(record, outcome, ctx(3_000));
        if (t.finish === null) {
          expect(Number.isFinite(t.record.nextDueAt)).toBe(true);
          expect(t.record.nextDueAt).toBeGreaterThan(3_000);
        }
        for (const event of t.events) {
          // What reaches a log line is bounded, whatever the body held.
          expect(JSON.stringify(event).length).toBeLessThan(30_000);
        }
        if (t.finish) {
          const webhook = JSON.stringify(
            buildWebhookBody(t.finish, RUN_ID, t.record.snapshot, new Date(0)),
          );
          expect(webhook.length).toBeLessThan(1_000_000);
        }
      }),
      { numRuns: 10_000 },
    );
    // Both sides were explored, not only one.
    expect(parsed).toBeGreaterThan(1_000);
    expect(failed).toBeGreaterThan(1_000);
  });
});
