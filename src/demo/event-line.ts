import { z } from 'zod';

/** Just the parts of the webhook body (src/notify/payload.ts) a person wants to see. */
const WebhookEvent = z.object({
  type: z.string(),
  data: z.object({
    run_id: z.string(),
    status: z.string().nullable(),
    samples_completed: z.number().nullable(),
    samples_failed: z.number().nullable(),
    total_cost: z.number().nullable(),
    generated_files: z.array(z.unknown()),
  }),
});

const ICONS: Record<string, string> = {
  'run.succeeded': '✔',
  'run.failed': '✘',
  'run.canceled': '⊘',
  'run.not_found': '?',
  'run.watch_timeout': '⧗',
};

/** One readable line per event: `✔ run.succeeded 3c90c3cc… SUCCEEDED 98 ok / 2 failed $1.37 2 files`. */
export function formatEventLine(body: unknown): string {
  const parsed = WebhookEvent.safeParse(body);
  if (!parsed.success) {
    const type =
      typeof body === 'object' && body !== null && 'type' in body ? String(body.type) : 'unknown';
    return `• ${type} (body not in the documented shape)`;
  }
  const { type, data } = parsed.data;
  const files = data.generated_files.length;
  return [
    ICONS[type] ?? '•',
    type,
    `${data.run_id.slice(0, 8)}…`,
    data.status ?? '-',
    `${data.samples_completed ?? '-'} ok / ${data.samples_failed ?? '-'} failed`,
    data.total_cost === null ? '$-' : `$${data.total_cost.toFixed(2)}`,
    `${files} ${files === 1 ? 'file' : 'files'}`,
  ].join(' ');
}
