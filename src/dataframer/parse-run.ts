import { InvalidResponseError } from './errors.js';
import { Run } from './schema.js';

/** A field of a 200 body that does not match the spec, as reported in `run.field_invalid`. */
export interface FieldProblem {
  /** Dotted path with array indices as `*` (`generated_files.*.size_bytes`): one per kind. */
  field: string;
  /** What the schema expected; never the value, which may be large. */
  problem: string;
}

/** A run read from the API, with the off-spec fields that were dropped from it. */
export interface RunReading {
  run: Run;
  invalidFields: FieldProblem[];
}

/** The account's runs as `GET /api/dataframer/runs/` lists them (no runtime_params or files). */
export interface RunList {
  runs: Run[];
  /** Items that broke the spec and were skipped. */
  invalidItems: number;
  /** The size of the answer, for the metric and the cost of the list. */
  bytes: number;
}

/**
 * Parses the list's body: a JSON array, each item validated on its own, so one item that breaks
 * the spec is skipped (and counted) instead of failing the whole list.
 */
export function parseRunList(body: string): Omit<RunList, 'bytes'> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidResponseError('the run list: body is not JSON', '', '(body)');
  }
  if (!Array.isArray(json))
    throw new InvalidResponseError('the run list: body is not a JSON array', '', '(root)');
  const runs: Run[] = [];
  for (const item of json) {
    const parsed = Run.safeParse(item);
    if (parsed.success) runs.push(parsed.data);
  }
  return { runs, invalidItems: json.length - runs.length };
}

/** What the watcher cannot work without: a body that gets these wrong fails the poll. */
const REQUIRED_FIELDS: ReadonlySet<PropertyKey> = new Set(['id', 'status']);
const MAX_PROBLEM_CHARS = 200;
/** One pass drops every bad value; the next one confirms. More means something is amiss. */
const MAX_PASSES = 3;
const DROPPED = Symbol('dropped');

/**
 * Parses a 200 body. Strict only about `id` and `status`: any other field that breaks the
 * spec is dropped (so it reads as null downstream) and reported, so that one off-spec
 * optional field (say `total_cost: "1.37"`) cannot keep a finished run from ending.
 */
export function parseRunBody(body: string, runId: string): RunReading {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidResponseError(`run ${runId}: body is not JSON`, runId, '(body)');
  }
  const problems = new Map<string, string>();
  for (let pass = 1; ; pass++) {
    const result = Run.safeParse(json);
    if (result.success) return checkedReading(result.data, runId, problems);
    const { issues } = result.error;
    // A pass after the first still finding problems means dropping did not settle: give up.
    const fatal = issues.find(isFatal) ?? (pass === MAX_PASSES ? issues[0] : undefined);
    if (fatal) {
      const path = fatal.path.length > 0 ? fatal.path.join('.') : '(root)';
      throw new InvalidResponseError(
        `run ${runId}: response does not match the Run schema at ${path}: ${fatal.message}`,
        runId,
        path,
      );
    }
    const pruned = new Set<unknown[]>();
    for (const issue of issues) {
      dropAt(json, issue.path, pruned);
      const field = issue.path
        .map((key) => (typeof key === 'number' ? '*' : String(key)))
        .join('.');
      if (!problems.has(field)) problems.set(field, issue.message.slice(0, MAX_PROBLEM_CHARS));
    }
    // Array elements were marked, not spliced, so that the other issues' indices stay right.
    for (const array of pruned) removeDropped(array);
  }
}

function isFatal(issue: { path: readonly PropertyKey[] }): boolean {
  return (
    issue.path.length === 0 || (issue.path.length === 1 && REQUIRED_FIELDS.has(issue.path[0]!))
  );
}

function checkedReading(run: Run, runId: string, problems: Map<string, string>): RunReading {
  if (run.id.toLowerCase() !== runId.toLowerCase()) {
    throw new InvalidResponseError(`run ${runId}: response is for run ${run.id}`, runId, 'id');
  }
  return { run, invalidFields: [...problems].map(([field, problem]) => ({ field, problem })) };
}

function removeDropped(array: unknown[]): void {
  let kept = 0;
  for (const item of array) if (item !== DROPPED) array[kept++] = item;
  array.length = kept;
}

/** Removes the value at `path` from the freshly parsed body (ours to change). */
function dropAt(root: unknown, path: readonly PropertyKey[], pruned: Set<unknown[]>): void {
  let parent: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (typeof parent !== 'object' || parent === null) return;
    parent = (parent as Record<PropertyKey, unknown>)[key];
  }
  const last = path.at(-1);
  if (last === undefined || typeof parent !== 'object' || parent === null) return;
  if (Array.isArray(parent) && typeof last === 'number') {
    parent[last] = DROPPED;
    pruned.add(parent);
  } else {
    delete (parent as Record<PropertyKey, unknown>)[last];
  }
}
