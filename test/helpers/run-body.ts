import { readFileSync } from 'node:fs';

/** The vendor's example response, copied verbatim into test/fixtures. */
export const exampleRun = JSON.parse(
  readFileSync(new URL('../fixtures/get-run.example.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & { id: string; runtime_params: Record<string, unknown> };

export function runBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...structuredClone(exampleRun), ...overrides };
}
