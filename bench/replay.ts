import { Run } from '../src/dataframer/schema.js';
import { mulberry32 } from '../src/demo/random.js';
import { runAt } from '../src/demo/run-view.js';
import { finishOffsetMs, type Scenario } from '../src/demo/scenario.js';
import type { PollTiming } from '../src/watch/poll-policy.js';
import { newRunRecord, type RunRecord } from '../src/domain/run.js';
import { applyPoll } from '../src/watch/run-state.js';
import { MinHeap } from '../src/util/min-heap.js';
import { fixed, ratio, seconds, table } from './report.js';
import { mean, percentile } from './stats.js';

/**
 * The poll policy and the run state machine of the watcher (the same functions), replayed on a
 * scenario's timelines in virtual time: no processes, no network, no caps, no latency. It runs
 * thousands of runs in a second, so a policy change can be judged over many seeds before the
 * real comparison (comparison.ts) measures it on the built program.
 */
export interface ReplayedRun {
  runId: string;
  outcome: string;
  shape: string;
  polls: number;
  detectionMs: number;
}

/** How often the comparison hands new runs to the watcher (it rewrites the list, then SIGHUP). */
const LIST_REFRESH_MS = 250;

export function replay(scenario: Scenario, timing: PollTiming, seed: number): ReplayedRun[] {
  const random = mulberry32(seed);
  const timelines = new Map(scenario.runs.map((run) => [run.runId, run]));
  const due = new MinHeap<{ at: number; record: RunRecord }>();
  for (const run of scenario.runs) {
    const addedAt = Math.ceil(run.startMs / LIST_REFRESH_MS) * LIST_REFRESH_MS;
    const record = newRunRecord(run.runId, addedAt, addedAt + Math.floor(random() * timing.minMs));
    due.push(record.nextDueAt, { at: record.nextDueAt, record });
  }
  const polls = new Map<string, number>();
  const results: ReplayedRun[] = [];
  for (let next = due.pop(); next; next = due.pop()) {
    const { at, record } = next;
    const timeline = timelines.get(record.runId)!;
    polls.set(record.runId, (polls.get(record.runId) ?? 0) + 1);
    const run = Run.parse(runAt(timeline, at));
    const transition = applyPoll(
      record,
      { ok: true, run },
      { now: at, timing, notFoundAfterMs: 60_000, random },
    );
    if (transition.finish) {
      results.push({
        runId: record.runId,
        outcome: timeline.outcome,
        shape: timeline.shape,
        polls: polls.get(record.runId)!,
        detectionMs: at - finishOffsetMs(timeline),
      });
    } else {
      due.push(transition.record.nextDueAt, {
        at: transition.record.nextDueAt,
        record: transition.record,
      });
    }
  }
  return results;
}

/** The kinds of run the tables break figures down by. */
export const RUN_KINDS: [string, (outcome: string, shape: string) => boolean][] = [
  ['succeeded (linear, steps, tail)', (o) => o === 'SUCCEEDED'],
  ['succeeded, linear', (o, s) => o === 'SUCCEEDED' && s === 'linear'],
  ['succeeded, steps', (o, s) => o === 'SUCCEEDED' && s === 'steps'],
  ['succeeded, tail', (o, s) => o === 'SUCCEEDED' && s === 'tail'],
  ['failed', (o) => o === 'FAILED'],
  ['canceled', (o) => o === 'CANCELED'],
];

export const REPLAY_SEEDS = 20;

/** The comparison's scenario shape (200 runs, 10-60 s) under several seeds, every policy. */
export function replayTable(
  scenarioFor: (seed: number) => Scenario,
  timing: Omit<PollTiming, 'policy'>,
): string {
  const policies = ['fixed', 'exponential', 'adaptive'] as const;
  const results = policies.map((policy) => {
    const runs: ReplayedRun[] = [];
    for (let seed = 1; seed <= REPLAY_SEEDS; seed++)
      runs.push(...replay(scenarioFor(seed), { ...timing, policy }, seed));
    return { policy, runs };
  });
  const fixedPolls = mean(results[0]!.runs.map((r) => r.polls));
  const figures = (runs: ReplayedRun[]) => {
    const detection = runs.map((r) => r.detectionMs);
    return `${fixed(mean(runs.map((r) => r.polls)))} / ${seconds(percentile(detection, 50))} / ${seconds(percentile(detection, 95))}`;
  };
  const rows = [
    ['all runs', String(results[0]!.runs.length), ...results.map((r) => figures(r.runs))],
    ...RUN_KINDS.map(([name, match]) => {
      const pick = (runs: ReplayedRun[]) => runs.filter((r) => match(r.outcome, r.shape));
      return [
        name,
        String(pick(results[0]!.runs).length),
        ...results.map((r) => figures(pick(r.runs))),
      ];
    }),
  ];
  const ratios = results
    .slice(1)
    .map((r) => `${r.policy} ${ratio(mean(r.runs.map((x) => x.polls)), fixedPolls)}`)
    .join(', ');
  return (
    table(
      ['runs', 'count', ...policies.map((p) => `${p}: polls mean / detection p50 / p95 (s)`)],
      rows,
    ) + `\n\nPolls per run against fixed: ${ratios}.`
  );
}
