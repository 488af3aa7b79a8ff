import { setTimeout as delay } from 'node:timers/promises';
import { RequestError, type Got, type PlainResponse, type Request } from 'got';
import pRetry from 'p-retry';
import {
  DataFramerError,
  RateLimitedError,
  ResponseTooLargeError,
  TransientError,
  errorForStatus,
} from './errors.js';
import { parseRunBody, parseRunList, type RunList, type RunReading } from './parse-run.js';
import { USER_AGENT, parseRetryAfter, plainHttp, responseHead } from '../util/http.js';

/**
 * The largest Run body the client reads, in bytes. got would otherwise buffer any body whole
 * (a 150 MB one took the process to 1.5 GB); a real run's body is a few kB, or about 100 bytes
 * per generated file.
 */
export const MAX_RUN_BODY_BYTES = 32 * 1024 * 1024;

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
  /** Wall clock, only to read a Retry-After given as an HTTP date. */
  now?: () => number;
  /** Monotonic clock for the client-wide pause, so a wall-clock step cannot stretch it. */
  monotonicNow?: () => number;
  sleep?: (ms: number) => Promise<void>;
  maxBodyBytes?: number;
}

export interface RunFetcher {
  /** The run, and the fields of its body that broke the spec (dropped, so they read as null). */
  readRun(runId: string): Promise<RunReading>;
}

/** What the watcher asks of the DataFramer API: one run, and the account's list. */
export interface DataFramerApi extends RunFetcher {
  listRuns(): Promise<RunList>;
}

/**
 * Reads runs from the DataFramer API. One retry layer: got never retries (limit 0); p-retry
 * retries transient failures with jittered backoff. A 429 or 503 with Retry-After pauses every
 * request of this client, since one API key shares one rate limit. Bodies are streamed and
 * read up to `maxBodyBytes` (MAX_RESPONSE_BYTES).
 */
export class DataFramerClient implements DataFramerApi {
  readonly #http: Got;
  readonly #options: Required<Omit<DataFramerClientOptions, 'apiKey' | 'baseUrl' | 'timeoutMs'>>;
  /** On the monotonic clock. */
  #pausedUntil = 0;

  constructor(options: DataFramerClientOptions) {
    this.#options = {
      retries: options.retries ?? 3,
      minRetryDelayMs: options.minRetryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 8_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 120_000,
      now: options.now ?? Date.now,
      monotonicNow: options.monotonicNow ?? (() => performance.now()),
      sleep: options.sleep ?? ((ms) => delay(ms)),
      maxBodyBytes: options.maxBodyBytes ?? MAX_RUN_BODY_BYTES,
    };
    this.#http = plainHttp({
      prefixUrl: options.baseUrl,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json',
        'user-agent': USER_AGENT,
      },
      timeout: { request: options.timeoutMs },
    });
  }

  async readRun(runId: string): Promise<RunReading> {
    const path = `api/dataframer/runs/${encodeURIComponent(runId)}/`;
    return this.#withRetries(async () =>
      parseRunBody(await this.#read(path, runId, `run ${runId}`), runId),
    );
  }

  /**
   * `GET /api/dataframer/runs/`: every run of the account, read up to the same byte cap as a
   * run. Items are validated one by one: one that breaks the spec is skipped and counted.
   */
  async listRuns(): Promise<RunList> {
    return this.#withRetries(async () => {
      const body = await this.#read('api/dataframer/runs/', '', 'the run list');
      return { ...parseRunList(body), bytes: Buffer.byteLength(body) };
    });
  }

  async #withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    return pRetry(attempt, {
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
          this.#pausedUntil = Math.max(
            this.#pausedUntil,
            this.#options.monotonicNow() + retryAfterMs,
          );
        }
      },
    });
  }

  /** One GET of `path`, its body as text; `target` names it in errors (`run …`, `the run list`). */
  async #read(path: string, runId: string, target: string): Promise<string> {
    const wait = this.#pausedUntil - this.#options.monotonicNow();
    if (wait > 0) await this.#options.sleep(wait);

    const stream = this.#http.stream(path);
    let response: PlainResponse;
    try {
      response = await responseHead(stream);
    } catch (error) {
      throw networkFailure(error, runId, target);
    }

    const failure = errorForStatus(
      response.statusCode,
      runId,
      parseRetryAfter(
        response.headers['retry-after'],
        this.#options.now(),
        this.#options.maxRetryAfterMs,
      ),
      target,
    );
    if (failure) {
      stream.destroy(); // an error's body is never read
      throw failure;
    }
    return this.#readBody(stream, response, runId, target);
  }

  /** The body as text, or ResponseTooLargeError as soon as it is known to pass the cap. */
  async #readBody(
    stream: Request,
    response: PlainResponse,
    runId: string,
    target: string,
  ): Promise<string> {
    const max = this.#options.maxBodyBytes;
    const tooLarge = () =>
      new ResponseTooLargeError(
        `${target}: response body is larger than ${max} bytes`,
        runId,
        response.statusCode,
        max,
      );
    const declared = Number(response.headers['content-length']);
    if (declared > max) {
      stream.destroy();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      // Leaving the loop early (the throw) destroys the stream, which closes the connection.
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > max) throw tooLarge();
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof DataFramerError) throw error;
      throw networkFailure(error, runId, target);
    }
    return Buffer.concat(chunks, size).toString('utf8');
  }
}

function networkFailure(error: unknown, runId: string, target: string): unknown {
  if (!(error instanceof RequestError)) return error;
  const code = error.code || 'ERR_NETWORK';
  return new TransientError(`GET ${target} failed: ${code}`, runId, null, code);
}
