import type { GeneratedFile, Run, TerminalStatus } from '../dataframer/schema.js';

export const FINISH_TYPES = [
  'run.succeeded',
  'run.failed',
  'run.canceled',
  'run.not_found',
  'run.watch_timeout',
] as const;
export type FinishType = (typeof FINISH_TYPES)[number];

export function finishTypeFor(status: TerminalStatus): FinishType {
  return status === 'SUCCEEDED'
    ? 'run.succeeded'
    : status === 'FAILED'
      ? 'run.failed'
      : 'run.canceled';
}

/** The webhook body of DESIGN.md; `data` is null-filled where the API said nothing. */
export interface WebhookBody {
  type: FinishType;
  timestamp: string;
  data: {
    run_id: string;
    status: string | null;
    samples_completed: number | null;
    samples_failed: number | null;
    total_cost: number | null;
    generated_files: GeneratedFile[];
    spec_id: string | null;
    spec_name: string | null;
    spec_version: number | null;
    dataset_id: string | null;
    dataset_name: string | null;
    created_at: string | null;
    completed_at: string | null;
  };
}

/**
 * The `webhook-id` of a run's terminal event: derived from the run and the event alone, so
 * every redelivery (after a retry, a crash or a replay) carries the same id.
 */
export function messageIdFor(runId: string, type: FinishType): string {
  return `msg_${runId.replaceAll('-', '')}_${type.slice('run.'.length)}`;
}

export function buildWebhookBody(
  type: FinishType,
  runId: string,
  snapshot: Run | null,
  at: Date,
): WebhookBody {
  return {
    type,
    timestamp: at.toISOString(),
    data: {
      run_id: runId,
      status: snapshot?.status ?? null,
      samples_completed: snapshot?.samples_completed ?? null,
      samples_failed: snapshot?.samples_failed ?? null,
      total_cost: snapshot?.total_cost ?? null,
      generated_files: snapshot?.generated_files ?? [],
      spec_id: snapshot?.spec_id ?? null,
      spec_name: snapshot?.spec_name ?? null,
      spec_version: snapshot?.spec_version ?? null,
      dataset_id: snapshot?.dataset_id ?? null,
      dataset_name: snapshot?.dataset_name ?? null,
      created_at: snapshot?.created_at ?? null,
      completed_at: snapshot?.completed_at ?? null,
    },
  };
}
