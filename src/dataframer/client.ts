import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import got, { RequestError, type Got } from 'got';
import pRetry from 'p-retry';
import {
  DataFramerError,
  InvalidResponseError,
  RateLimitedError,
  TransientError,
  errorForStatus,
  parseRetryAfter,
} from './errors.js';
import { Run } from './schema.js';

export interface DataFramerClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  /** Retries after the first attempt, for transient failures only. */
  retries?: number;
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** A server asking for a longer pause than this is waited for this long. */
  maxRetryAfterMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RunFetcher {
  getRun(runId: string): Promise<Run>;
}

/**
 * Reads runs from the DataFramer API. One retry layer: got never retries (limit 0); p-retry
 * retries transient failures with jittered backoff. A 429 or 503 with Retry-After pauses every
 * request of this client, since one API key shares one rate limit.
 */
export class DataFramerClient implements RunFetcher {
  readonly #http: Got;
  readonly #options: Required<Omit<DataFramerClientOptions, 'apiKey' | 'baseUrl' | 'timeoutMs'>>;
  #pausedUntil = 0;

  constructor(options: DataFramerClientOptions) {
    this.#options = {
      retries: options.retries ?? 3,
      minRetryDelayMs: options.minRetryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 8_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
      now: options.now ?? Date.now,
      sleep: options.sleep ?? ((ms) => delay(ms)),
    };
    this.#http = got.extend({
      prefixUrl: options.baseUrl,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json',
        'user-agent': 'dataframer-run-watcher',
      },
      timeout: { request: options.timeoutMs },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      responseType: 'text',
      agent: {
        http: new HttpAgent({ keepAlive: true }),
        https: new HttpsAgent({ keepAlive: true }),
      },
    });
  }

  async getRun(runId: string): Promise<Run> {
    return pRetry(() => this.#attempt(runId), {
      retries: this.#options.retries,
      minTimeout: this.#options.minRetryDelayMs,
      maxTimeout: this.#options.maxRetryDelayMs,
      randomize: true,
      shouldRetry: ({ error }) => error instanceof DataFramerError && error.retryable,
      onFailedAttempt: ({ error }) => {
        const retryAfterMs =
          error instanceof RateLimitedError || error instanceof TransientError
            ? error.retryAfterMs
            : null;
        if (retryAfterMs !== null) {
          this.#pausedUntil = Math.max(this.#pausedUntil, this.#options.now() + retryAfterMs);
        }
      },
    });
  }

  async #attempt(runId: string): Promise<Run> {
    const wait = this.#pausedUntil - this.#options.now();
    if (wait > 0) await this.#options.sleep(wait);

    let response;
    try {
      response = await this.#http.get(`api/dataframer/runs/${encodeURIComponent(runId)}/`);
    } catch (error) {
      if (error instanceof RequestError) {
        const code = error.code || 'ERR_NETWORK';
        throw new TransientError(`GET run ${runId} failed: ${code}`, runId, null, code);
      }
      throw error;
    }

    const retryAfter = response.headers['retry-after'];
    const failure = errorForStatus(
      response.statusCode,
      runId,
      parseRetryAfter(retryAfter, this.#options.now(), this.#options.maxRetryAfterMs),
    );
    if (failure) throw failure;
    return parseRunBody(response.body, runId);
  }
}

/** Validates a 200 body; the error names the first offending field path. */
export function parseRunBody(body: string, runId: string): Run {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidResponseError(`run ${runId}: body is not JSON`, runId, '(body)');
  }
  const result = Run.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new InvalidResponseError(
      `run ${runId}: response does not match the Run schema at ${path}: ${issue?.message ?? 'invalid'}`,
      runId,
      path,
    );
  }
  if (result.data.id.toLowerCase() !== runId.toLowerCase()) {
    throw new InvalidResponseError(
      `run ${runId}: response is for run ${result.data.id}`,
      runId,
      'id',
    );
  }
  return result.data;
}
