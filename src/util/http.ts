import { once } from 'node:events';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import got, { type ExtendOptions, type Got, type PlainResponse, type Request } from 'got';

/** Sent with every request the watcher makes, to the API and to receivers. */
export const USER_AGENT = 'dataframer-run-watcher';

/**
 * A got instance for one peer: keep-alive connections, and no retries, redirects or thrown
 * HTTP errors of got's own, since each caller has its rules for those.
 */
export function plainHttp(options: ExtendOptions = {}): Got {
  return got.extend(
    {
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      agent: {
        http: new HttpAgent({ keepAlive: true }),
        https: new HttpsAgent({ keepAlive: true }),
      },
    },
    options,
  );
}

/**
 * The response head of a streamed request; the body is left to the caller. A failure before
 * the head destroys the stream and is thrown as got raised it.
 */
export async function responseHead(stream: Request): Promise<PlainResponse> {
  // Errors reach the await below; this keeps one after it from being unhandled.
  stream.on('error', () => {});
  try {
    const [response] = (await once(stream, 'response')) as [PlainResponse];
    return response;
  } catch (error) {
    stream.destroy();
    throw error;
  }
}

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds, capped at `maxMs`. */
export function parseRetryAfter(
  header: string | undefined,
  now: number,
  maxMs: number,
): number | null {
  if (header === undefined || header.trim() === '') return null;
  const value = header.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(value)) ms = Number(value) * 1000;
  else {
    const date = Date.parse(value);
    if (Number.isNaN(date)) return null;
    ms = date - now;
  }
  return Math.min(Math.max(0, Math.round(ms)), maxMs);
}

/** A URL as it may appear in logs and metrics: no credentials, no query string. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
