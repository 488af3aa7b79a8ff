import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
/** A bad command line: the entry prints the message and exits with EX_USAGE (64). */
export class UsageError extends Error {
  readonly code = 'EX_USAGE';
}

export const EX_USAGE = 64;

export function parseInteger(
  name: string,
  value: string | undefined,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  // Number('') is 0 and Number('1e3') is 1000; neither is what someone typing a port means.
  if (!/^-?\d+$/.test(value.trim()))
    throw new UsageError(`--${name} must be an integer, got "${value}"`);
  const parsed = Number(value);
  if (parsed < min || parsed > max)
    throw new UsageError(`--${name} must be between ${min} and ${max}, got ${parsed}`);
  return parsed;
}

export function parseJson(name: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new UsageError(
      `--${name} is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Parses `--name value` options (all strings), strictly; a bad one throws UsageError with `usage`. */
export function parseStringOptions<const N extends string>(
  argv: string[],
  names: readonly N[],
  usage: string,
): Partial<Record<N, string>> {
  const options: ParseArgsOptionsConfig = {};
  for (const name of names) options[name] = { type: 'string' };
  try {
    return parseArgs({ args: argv, strict: true, options }).values as Partial<Record<N, string>>;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}
