/** Longest free text (names, paths, messages) copied into a log line or a webhook. */
export const MAX_TEXT_CHARS = 1_000;
/** Longest run status copied into a log line or a webhook (a known one has at most 10). */
export const MAX_STATUS_CHARS = 64;

/** `text` cut to at most `max` characters, the cut marked with `…`. */
export function clip(text: string, max = MAX_TEXT_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
