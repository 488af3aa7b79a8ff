/**
 * Typed failures of the DataFramer client. `errorForStatus` is the one place that maps an HTTP
 * status to a class; `retryable` is the one flag the retry layer reads. Messages never carry
 * the request's headers, so the API key cannot leak through an error.
 */
export type DataFramerErrorCode =
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'RATE_LIMITED'
  | 'TRANSIENT'
  | 'INVALID_RESPONSE'
  | 'RESPONSE_TOO_LARGE'
  | 'UNEXPECTED_STATUS';

export abstract class DataFramerError extends Error {
  abstract readonly code: DataFramerErrorCode;
  abstract readonly retryable: boolean;
  constructor(
    message: string,
    readonly runId: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class RunNotFoundError extends DataFramerError {
  readonly code = 'NOT_FOUND';
  readonly retryable = false;
}

export class UnauthorizedError extends DataFramerError {
  readonly code = 'UNAUTHORIZED';
  readonly retryable = false;
}

export class RateLimitedError extends DataFramerError {
  readonly code = 'RATE_LIMITED';
  readonly retryable = true;
  constructor(
    message: string,
    runId: string,
    status: number,
    /** How long the server asked us to wait, already capped; null when it did not say. */
    readonly retryAfterMs: number | null,
  ) {
    super(message, runId, status);
  }
}

export class TransientError extends DataFramerError {
  readonly code = 'TRANSIENT';
  readonly retryable = true;
  constructor(
    message: string,
    runId: string,
    status: number | null,
    /** Node's network error code (ECONNRESET, ETIMEDOUT, ...) when there was no response. */
    readonly networkCode: string | null = null,
    /** 503 may carry Retry-After too. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message, runId, status);
  }
}

export class InvalidResponseError extends DataFramerError {
  readonly code = 'INVALID_RESPONSE';
  readonly retryable = false;
  constructor(
    message: string,
    runId: string,
    /** Dotted path of the first offending field, `(body)` when the body is not JSON. */
    readonly path: string,
  ) {
    super(message, runId, 200);
  }
}

/**
 * The body was larger than the client reads. Not retried at once (the same run would most
 * likely send the same body); the poll policy looks at the run again later, as after any
 * failed poll.
 */
export class ResponseTooLargeError extends DataFramerError {
  readonly code = 'RESPONSE_TOO_LARGE';
  readonly retryable = false;
  constructor(
    message: string,
    runId: string,
    status: number,
    /** The cap the body went over, in bytes. */
    readonly limitBytes: number,
  ) {
    super(message, runId, status);
  }
}

export class UnexpectedStatusError extends DataFramerError {
  readonly code = 'UNEXPECTED_STATUS';
  readonly retryable = false;
}

export function errorForStatus(
  status: number,
  runId: string,
  retryAfterMs: number | null,
  target = `run ${runId}`,
): DataFramerError | null {
  if (status >= 200 && status < 300) return null;
  const what = `GET ${target} answered ${status}`;
  if (status === 404) return new RunNotFoundError(`${what}: run not found`, runId, status);
  if (status === 401 || status === 403)
    return new UnauthorizedError(`${what}: API key refused`, runId, status);
  if (status === 429)
    return new RateLimitedError(`${what}: rate limited`, runId, status, retryAfterMs);
  if (status === 408 || status >= 500)
    return new TransientError(`${what}`, runId, status, null, status === 503 ? retryAfterMs : null);
  return new UnexpectedStatusError(`${what}: unexpected status`, runId, status);
}
