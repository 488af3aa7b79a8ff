import {
  DataFramerError,
  InvalidResponseError,
  ResponseTooLargeError,
  RunNotFoundError,
  TransientError,
  UnauthorizedError,
} from '../dataframer/errors.js';
import type { FieldProblem } from '../dataframer/parse-run.js';
import { isKnownStatus, isTerminalStatus, type Run } from '../dataframer/schema.js';
import {
  MAX_LOG_FILES,
  NO_PROGRESS,
  finishTypeFor,
  summarizeRun,
  type FinishType,
  type RunRecord,
} from '../domain/run.js';
import type { WatchEvent } from '../logging.js';
import { MAX_STATUS_CHARS, clip } from '../util/text.js';
import { nextPollDelay, pollStateOf, type PollTiming } from './poll-policy.js';
import { crossedTenth, hasProgressed, samplesDone, trackProgress } from './progress.js';

export type PollOutcome =
  | {
      ok: true;
      run: Run;
      /** Off-spec fields of the body (dropped from `run`) not yet reported for this run. */
      invalidFields?: readonly FieldProblem[];
    }
  | { ok: false; error: unknown };

export interface PollContext {
  now: number;
  timing: PollTiming;
  /** 404s for this long (from the first of a stretch) end the run as not found. */
  notFoundAfterMs: number;
  random: () => number;
}

export interface Transition {
  record: RunRecord;
  events: WatchEvent[];
  /** Set when the run is over: the webhook type it ends with. */
  finish: FinishType | null;
  /** Whether the durable record changed in a way worth writing (status, progress, end). */
  changed: boolean;
  /** The API refused the key (401/403): the caller tracks this for readiness. */
  keyRefused: boolean;
  /** The API answered in a way that proves the key works (200 or 404). */
  keyAccepted: boolean;
}

/** The fields of `run.finished` (docs/events.md): the run's summary, as the webhook's data. */
export function finishedFields(record: RunRecord, now: number): Record<string, unknown> {
  return {
    ...summarizeRun(record.snapshot, MAX_LOG_FILES),
    watch_duration_ms: now - record.addedAt,
  };
}

const statusText = (status: string | null) =>
  status === null ? null : clip(status, MAX_STATUS_CHARS);

function finished(record: RunRecord, type: FinishType, now: number): RunRecord {
  return { ...record, finishedAt: now, outcome: type };
}

/** The state machine of one run: what a poll's outcome does to the record, and what to log. */
export function applyPoll(record: RunRecord, outcome: PollOutcome, ctx: PollContext): Transition {
  return outcome.ok
    ? applyRun(record, outcome.run, outcome.invalidFields ?? [], ctx)
    : applyFailure(record, outcome.error, ctx);
}

function applyRun(
  record: RunRecord,
  run: Run,
  invalidFields: readonly FieldProblem[],
  ctx: PollContext,
): Transition {
  const { now } = ctx;
  // The run goes on without them; the owner of the API hears of each once per run.
  const events: WatchEvent[] = invalidFields.map(({ field, problem }) => ({
    level: 'warn',
    event: 'run.field_invalid',
    runId: record.runId,
    msg: 'run body has a field that does not match the API spec; it is passed on as null',
    fields: { field: clip(field, 200), problem: clip(problem, 200) },
  }));
  const status = run.status;
  const statusChanged = status !== record.status;
  const done = samplesDone(run);
  const progressed = hasProgressed(record.progress, done);
  const total = run.runtime_params?.number_of_samples;

  if (statusChanged) {
    events.push({
      level: 'info',
      event: 'run.status_changed',
      runId: record.runId,
      msg: 'run status changed',
      fields: {
        from: statusText(record.status),
        to: statusText(status),
        samples_completed: run.samples_completed ?? null,
        samples_failed: run.samples_failed ?? null,
        number_of_samples: total ?? null,
      },
    });
    if (!isKnownStatus(status)) {
      events.push({
        level: 'warn',
        event: 'run.unknown_status',
        runId: record.runId,
        msg: 'run reported a status the API spec does not list; treated as not finished',
        fields: { status: statusText(status) },
      });
    }
  }

  // Progress is logged when it crosses a tenth of the run, so a person tailing the logs sees
  // work advancing without one line per poll.
  if (
    !statusChanged &&
    progressed &&
    total &&
    crossedTenth(record.progress.last?.done ?? 0, done, total)
  ) {
    events.push({
      level: 'info',
      event: 'run.progress',
      runId: record.runId,
      msg: 'run progress',
      fields: {
        status: statusText(status),
        samples_done: done,
        number_of_samples: total,
        percent: Math.floor((done * 100) / total),
      },
    });
  }

  // The slope of progress predicts the end (poll-policy.ts).
  const progress = trackProgress(record.progress, {
    now,
    status,
    done,
    total,
    statusChanged,
    lastPolledAt: record.lastPolledAt,
  });

  const next: RunRecord = {
    ...record,
    status,
    snapshot: run,
    notFoundCount: 0,
    notFoundSince: null,
    lastPolledAt: now,
    unchangedPolls: statusChanged || progressed ? 0 : record.unchangedPolls + 1,
    progress,
  };

  if (isTerminalStatus(status)) {
    const type = finishTypeFor(status);
    const end = finished(next, type, now);
    events.push({
      level: 'info',
      event: 'run.finished',
      runId: record.runId,
      msg: 'run finished',
      fields: finishedFields(end, now),
    });
    return {
      record: end,
      events,
      finish: type,
      changed: true,
      keyRefused: false,
      keyAccepted: true,
    };
  }

  next.nextDueAt = now + nextPollDelay(pollStateOf(next, now), ctx.timing, now, ctx.random);
  return {
    record: next,
    events,
    finish: null,
    // A flip to batched changes how later changes are placed: worth one write.
    changed: statusChanged || progressed || progress.batched !== record.progress.batched,
    keyRefused: false,
    keyAccepted: true,
  };
}

function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof DataFramerError)) {
    return {
      code: 'INTERNAL',
      message: clip(error instanceof Error ? error.message : String(error)),
    };
  }
  return {
    code: error.code,
    message: clip(error.message),
    status: error.status,
    ...(error instanceof InvalidResponseError ? { path: clip(error.path, 200) } : {}),
    ...(error instanceof ResponseTooLargeError ? { limit_bytes: error.limitBytes } : {}),
    ...(error instanceof TransientError && error.networkCode
      ? { network_code: error.networkCode }
      : {}),
  };
}

function applyFailure(record: RunRecord, error: unknown, ctx: PollContext): Transition {
  const { now, timing } = ctx;
  const base = {
    events: [] as WatchEvent[],
    finish: null,
    changed: false,
    keyRefused: false,
    keyAccepted: false,
  };

  if (error instanceof UnauthorizedError) {
    // The key is wrong, not the run: keep it and look again at the slowest pace.
    return { ...base, record: { ...record, nextDueAt: now + timing.maxMs }, keyRefused: true };
  }

  if (error instanceof RunNotFoundError) {
    // Vendor lag or a proxy's 404 page can hide a real run for a while: only 404s that last
    // NOT_FOUND_AFTER_MS end it. Until then it is looked at again, backing off to the max.
    const notFoundCount = record.notFoundCount + 1;
    const notFoundSince = record.notFoundSince ?? now;
    if (now - notFoundSince >= ctx.notFoundAfterMs) {
      const end = finished({ ...record, notFoundCount, notFoundSince }, 'run.not_found', now);
      return {
        ...base,
        record: end,
        finish: 'run.not_found',
        changed: true,
        keyAccepted: true,
        events: [
          {
            level: 'warn',
            event: 'run.not_found',
            runId: record.runId,
            msg: 'run not found; no longer watched',
            fields: {
              not_found_count: notFoundCount,
              not_found_for_ms: now - notFoundSince,
              watch_duration_ms: now - record.addedAt,
            },
          },
        ],
      };
    }
    return {
      ...base,
      keyAccepted: true,
      // The start of a stretch is saved, so a restart does not start the stretch over.
      changed: record.notFoundSince === null,
      record: {
        ...record,
        notFoundCount,
        notFoundSince,
        nextDueAt: now + Math.min(timing.minMs * 2 ** (notFoundCount - 1), timing.maxMs),
      },
      events: [pollFailed(record.runId, error, { not_found_count: notFoundCount })],
    };
  }

  const unchangedPolls = record.unchangedPolls + 1;
  const delay = nextPollDelay(
    {
      unchangedPolls,
      totalSamples: null,
      progress: NO_PROGRESS,
      watchedMs: now - record.addedAt,
    },
    timing,
    now,
    ctx.random,
  );
  return {
    ...base,
    record: { ...record, unchangedPolls, nextDueAt: now + delay },
    events: [pollFailed(record.runId, error)],
  };
}

function pollFailed(
  runId: string,
  error: unknown,
  extra: Record<string, unknown> = {},
): WatchEvent {
  return {
    level: error instanceof DataFramerError ? 'warn' : 'error',
    event: 'poll.failed',
    runId,
    msg: 'poll failed',
    fields: { error: describeError(error), ...extra },
  };
}

/** A run watched for longer than MAX_WATCH_MS ends without a terminal status. */
export function expireRun(record: RunRecord, now: number): Transition {
  const end = finished(record, 'run.watch_timeout', now);
  return {
    record: end,
    finish: 'run.watch_timeout',
    changed: true,
    keyRefused: false,
    keyAccepted: false,
    events: [
      {
        level: 'warn',
        event: 'run.watch_timeout',
        runId: record.runId,
        msg: 'run still not finished after MAX_WATCH_MS; no longer watched',
        fields: {
          last_status: statusText(record.status),
          watch_duration_ms: now - record.addedAt,
        },
      },
    ],
  };
}
