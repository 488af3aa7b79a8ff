import { finalProcessed, progressAt } from './progress.js';
import {
  hashString,
  hexFrom,
  intBetween,
  mulberry32,
  numberBetween,
  pick,
  uuidFrom,
  type Random,
} from './random.js';
import type { RunTimeline } from './scenario.js';

/**
 * The body `GET /api/dataframer/runs/{run_id}/` returns for a simulated run, with every field of
 * the vendor's spec. What does not change over the run's life (spec, dataset, models, price)
 * is drawn from a PRNG seeded by the run id, so every poll of one run agrees with the last.
 */

const SPEC_NAMES = [
  'customer-support-chats',
  'insurance-claims',
  'clinical-notes-deid',
  'sql-text-pairs',
  'product-reviews-multilingual',
] as const;
const DATASET_NAMES = [
  'support-tickets-2025',
  'claims-sample',
  'notes-seed',
  'reviews-seed',
] as const;
const DATASET_TYPES = ['SINGLE_FILE', 'MULTI_FILE', 'MULTI_FOLDER'] as const;
const EMAILS = ['ada@example.com', 'grace@example.com', 'linus@example.org'] as const;
const MODELS = ['claude-sonnet-4-5', 'gpt-4.1', 'gemini-2.5-pro'] as const;
const LIGHT_MODELS = ['claude-haiku-4-5', 'gpt-4.1-mini', 'gemini-2.5-flash'] as const;
const SHUFFLING = ['none', 'sample', 'field', 'prompt'] as const;
const BUDGETS = [null, 1024, 2048, 4096] as const;

interface RunFacts {
  specId: string;
  specName: string;
  specVersion: number;
  dataset: { id: string; name: string; type: string } | null;
  email: string;
  dollarsPerSample: number;
  bytesPerSample: number;
  runtimeParams: Record<string, unknown>;
  fileIds: [string, string, string];
}

function subset(random: Random, items: readonly string[]): string[] {
  return items.filter(() => random() < 0.5);
}

function factsFor(run: RunTimeline): RunFacts {
  const random = mulberry32(hashString(run.runId));
  const specId = uuidFrom(random);
  const specName = pick(random, SPEC_NAMES);
  const specVersion = intBetween(random, 1, 12);
  // About a third of the specs are seedless: the spec gives the dataset fields as null then.
  const dataset =
    random() < 0.35
      ? null
      : {
          id: uuidFrom(random),
          name: pick(random, DATASET_NAMES),
          type: pick(random, DATASET_TYPES),
        };
  const revisions = random() < 0.6;
  const runtimeParams: Record<string, unknown> = {
    number_of_samples: run.numberOfSamples,
    generation_model: pick(random, MODELS),
    outline_model: pick(random, LIGHT_MODELS),
    revision_model: revisions ? pick(random, MODELS) : null,
    revision_types: revisions
      ? subset(random, ['consistency', 'conformance', 'distinguishability'])
      : [],
    filtering_types: subset(random, ['structural', 'conformance', 'deduplication']),
    max_revision_cycles: revisions ? intBetween(random, 1, 3) : null,
    seed_shuffling_level: dataset === null ? 'none' : pick(random, SHUFFLING),
    max_examples_in_prompt: random() < 0.5 ? null : intBetween(random, 2, 10),
    unified_multifield: random() < 0.5,
    generation_thinking_budget: pick(random, BUDGETS),
    outline_thinking_budget: pick(random, BUDGETS),
    revision_thinking_budget: revisions ? pick(random, BUDGETS) : null,
    skip_outline: pick(random, [null, true, false] as const),
    tools: pick(random, [null, [], ['web_search'], ['web_search', 'python']] as const),
  };
  return {
    specId,
    specName,
    specVersion,
    dataset,
    email: pick(random, EMAILS),
    dollarsPerSample: numberBetween(random, 0.004, 0.03),
    bytesPerSample: intBetween(random, 300, 4_000),
    runtimeParams,
    fileIds: [hexFrom(random, 24), hexFrom(random, 24), hexFrom(random, 24)],
  };
}

function generatedFiles(facts: RunFacts, completed: number): Record<string, unknown>[] {
  return [
    {
      id: facts.fileIds[0],
      path: 'out/data.csv',
      file_type: 'text/csv',
      size_bytes: completed * facts.bytesPerSample,
    },
    {
      id: facts.fileIds[1],
      path: 'out/data.jsonl',
      file_type: 'application/x-ndjson',
      size_bytes: Math.round(completed * facts.bytesPerSample * 1.3),
    },
    {
      id: facts.fileIds[2],
      path: 'out/report.json',
      file_type: 'application/json',
      size_bytes: 1_800 + 40 * completed,
    },
  ];
}

/**
 * The API body of `run` `elapsedMs` after the simulator started at `epochMs`; null before the
 * run exists (the API answers 404 then).
 */
export function runAt(
  run: RunTimeline,
  elapsedMs: number,
  epochMs = 0,
): Record<string, unknown> | null {
  const progress = progressAt(run, elapsedMs);
  if (progress === null) return null;
  const facts = factsFor(run);
  const dataset = facts.dataset;
  return {
    id: run.runId,
    status: progress.status,
    spec_id: facts.specId,
    spec_name: facts.specName,
    spec_version: facts.specVersion,
    dataset_id: dataset?.id ?? null,
    dataset_name: dataset?.name ?? null,
    // The spec's dataset_type is an enum without null; a seedless run has no dataset to type.
    ...(dataset ? { dataset_type: dataset.type } : {}),
    samples_completed: progress.samplesCompleted,
    samples_failed: progress.samplesFailed,
    // Billing settles when the run ends; the price covers every sample attempted.
    total_cost: progress.terminal
      ? Math.round(finalProcessed(run) * facts.dollarsPerSample * 100) / 100
      : null,
    created_at: new Date(epochMs + progress.createdMs).toISOString(),
    created_by_email: facts.email,
    completed_at: progress.terminal ? new Date(epochMs + progress.finishedMs).toISOString() : null,
    runtime_params: facts.runtimeParams,
    generated_files:
      progress.status === 'SUCCEEDED' ? generatedFiles(facts, progress.samplesCompleted) : [],
  };
}
