import { z } from 'zod';

/**
 * The Run schema of `GET /api/dataframer/runs/{run_id}/`, field by field from the vendor's
 * OpenAPI spec. Fields the spec does not list are dropped,
 * never rejected: a vendor addition never fails a poll, and nothing unknown (or of unknown
 * size) reaches a log line, a webhook or the store. This schema is strict about the fields it
 * knows; `parse-run.ts` decides which of them may be off-spec without failing the poll.
 */

export const RUN_STATUSES = ['PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED', 'CANCELED'] as const;
export type KnownRunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELED'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export function isTerminalStatus(status: string): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export function isKnownStatus(status: string): status is KnownRunStatus {
  return (RUN_STATUSES as readonly string[]).includes(status);
}

/**
 * An enum the vendor may extend (its own pages name statuses such as IN_PROGRESS that the
 * spec lacks): the known values are typed, an unknown one is kept rather than rejected.
 */
function openEnum<const T extends readonly [string, ...string[]]>(_values: T) {
  return z.string().min(1) as unknown as z.ZodType<T[number] | (string & {}), string>;
}

const Timestamp = z.iso.datetime({ offset: true, local: true });

/** The spec marks no field of a file required; the watcher does not need any of them either. */
export const GeneratedFile = z.object({
  id: z.string().optional(),
  path: z.string().optional(),
  file_type: z.string().optional(),
  size_bytes: z.int().nonnegative().optional(),
});
export type GeneratedFile = z.infer<typeof GeneratedFile>;

export const RunRuntimeParams = z.object({
  number_of_samples: z.int().nonnegative().optional(),
  generation_model: z.string().optional(),
  outline_model: z.string().optional(),
  revision_model: z.string().nullable().optional(),
  revision_types: z.array(z.string()).optional(),
  filtering_types: z.array(z.string()).optional(),
  max_revision_cycles: z.int().nullable().optional(),
  seed_shuffling_level: openEnum(['none', 'sample', 'field', 'prompt']).optional(),
  max_examples_in_prompt: z.int().nullable().optional(),
  unified_multifield: z.boolean().optional(),
  generation_thinking_budget: z.int().nullable().optional(),
  outline_thinking_budget: z.int().nullable().optional(),
  revision_thinking_budget: z.int().nullable().optional(),
  skip_outline: z.boolean().nullable().optional(),
  tools: z.array(z.string()).nullable().optional(),
});
export type RunRuntimeParams = z.infer<typeof RunRuntimeParams>;

/** `id` and `status` are what the watcher cannot work without; the spec marks no field required. */
export const Run = z.object({
  id: z.guid(),
  status: openEnum(RUN_STATUSES),
  spec_id: z.guid().optional(),
  spec_name: z.string().optional(),
  spec_version: z.int().optional(),
  dataset_id: z.guid().nullable().optional(),
  dataset_name: z.string().nullable().optional(),
  dataset_type: openEnum(['SINGLE_FILE', 'MULTI_FILE', 'MULTI_FOLDER']).optional(),
  samples_completed: z.int().nonnegative().optional(),
  samples_failed: z.int().nonnegative().optional(),
  total_cost: z.number().nullable().optional(),
  created_at: Timestamp.optional(),
  created_by_email: z.string().optional(),
  completed_at: Timestamp.nullable().optional(),
  runtime_params: RunRuntimeParams.optional(),
  generated_files: z.array(GeneratedFile).optional(),
});
export type Run = z.infer<typeof Run>;
