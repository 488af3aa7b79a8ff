import type { RequestRecord } from '../src/demo/simulator.js';
import type { ReceiverLog, RequestLog } from './world.js';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

/** What the API's and the receiver's logs say about one run. */
export interface RunFigures {
  runId: string;
  outcome: string;
  finishedAt: number;
  polls: number;
  /** First poll that saw the terminal status minus the end; null if no poll saw it. */
  detectionMs: number | null;
  /** Polls that arrived after one had already seen the terminal status (must be 0). */
  pollsAfterTerminal: number;
  /** Receiver receipt minus the end; null if nothing was delivered. */
  webhookMs: number | null;
}

/** Joins the simulator's request log and the receiver's log, run by run. */
export function figuresByRun(requests: RequestLog, received: ReceiverLog): RunFigures[] {
  const byRun = new Map<string, RequestRecord[]>();
  for (const request of requests.requests) {
    if (request.runId === null) continue;
    const id = request.runId.toLowerCase();
    const list = byRun.get(id);
    if (list) list.push(request);
    else byRun.set(id, [request]);
  }
  const receivedAt = new Map<string, number>();
  for (const delivery of received.deliveries) {
    const id = delivery.body.data?.run_id?.toLowerCase();
    if (id !== undefined && !receivedAt.has(id)) receivedAt.set(id, delivery.receivedAt);
  }
  return requests.runs.map((run) => {
    const id = run.runId.toLowerCase();
    const polls = byRun.get(id) ?? [];
    // The log is in arrival order, so the first match is the first poll that saw the end.
    const first = polls.findIndex(
      (p) => p.status === 200 && p.runStatus !== null && TERMINAL.has(p.runStatus),
    );
    const delivered = receivedAt.get(id);
    return {
      runId: id,
      outcome: run.outcome,
      finishedAt: run.finishedAt,
      polls: polls.length,
      detectionMs: first === -1 ? null : (polls[first]?.at ?? 0) - run.finishedAt,
      pollsAfterTerminal: first === -1 ? 0 : polls.length - first - 1,
      webhookMs: delivered === undefined ? null : delivered - run.finishedAt,
    };
  });
}

export function present<T>(values: readonly (T | null)[]): T[] {
  return values.filter((v): v is T => v !== null);
}
