/**
 * V8 sizes its young generation by the host's memory: on a large machine each semi-space grows
 * to 32-64 MB under this daemon's steady allocation, most of its RSS above the live heap.
 * 8 MB semi-spaces keep a 10,000-run watcher near 140 MB at no measurable CPU cost
 * (bench/RESULTS.md); 2 MB made it worse (objects promoted early).
 */
export const SEMI_SPACE_FLAG = '--max-semi-space-size';
export const SEMI_SPACE_MB = 8;

/**
 * Whether the operator already chose a semi-space size (node flag or NODE_OPTIONS; V8 takes
 * `_` and `-` alike in flag names).
 */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions = ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) =>
    arg.replaceAll('_', '-').startsWith(SEMI_SPACE_FLAG),
  );
}

/** The argv for re-executing this process with the semi-space cap (node flags first). */
export function cappedArgv(execPath: string, execArgv: readonly string[], argv: readonly string[]) {
  return [execPath, `${SEMI_SPACE_FLAG}=${SEMI_SPACE_MB}`, ...execArgv, ...argv.slice(1)];
}
