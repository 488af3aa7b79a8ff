import { DELIVERY_STATES } from '../domain/delivery.js';
import { FINISH_TYPES, RUN_SOURCES } from '../domain/run.js';

// The run API as OpenAPI 3.1, served at /api/openapi.json; test/integration/run-api.test.ts
// validates the server's answers against these schemas.

const time = { type: ['string', 'null'], format: 'date-time' } as const;
const count = { type: ['integer', 'null'], minimum: 0 } as const;
const uuid = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
} as const;
const object = (properties: Record<string, unknown>) => ({
  type: 'object',
  required: Object.keys(properties),
  additionalProperties: false,
  properties,
});

const runFields = {
  run_id: uuid,
  source: { enum: RUN_SOURCES },
  status: { type: ['string', 'null'] },
  samples_completed: count,
  samples_failed: count,
  number_of_samples: count,
  percent: { type: ['integer', 'null'], minimum: 0, maximum: 100 },
  total_cost: { type: ['number', 'null'] },
  added_at: { type: 'string', format: 'date-time' },
  last_polled_at: time,
  next_poll_at: time,
  predicted_end: {
    oneOf: [{ type: 'null' }, object({ earliest: time, latest: time })],
  },
  outcome: { oneOf: [{ type: 'null' }, { enum: FINISH_TYPES }] },
  finished_at: time,
};

const schemas = {
  RunItem: object({
    ...runFields,
    deliveries: {
      type: 'array',
      items: object({
        receiver: { type: 'string' },
        state: { enum: DELIVERY_STATES },
        attempts: { type: 'integer', minimum: 0 },
      }),
    },
  }),
  Delivery: object({
    delivery_id: { type: 'string' },
    webhook_id: { type: 'string' },
    type: { enum: FINISH_TYPES },
    receiver: { type: 'string' },
    state: { enum: DELIVERY_STATES },
    attempts: { type: 'integer', minimum: 0 },
    last_error: { type: ['string', 'null'] },
    next_attempt_at: time,
  }),
  RunDetail: object({
    ...runFields,
    snapshot: { type: ['object', 'null'] },
    deliveries: { type: 'array', items: { $ref: '#/components/schemas/Delivery' } },
  }),
  RunPage: object({
    runs: { type: 'array', items: { $ref: '#/components/schemas/RunItem' } },
    next_cursor: { type: ['string', 'null'] },
  }),
  AddRunsRequest: object({
    run_ids: { type: 'array', items: uuid, minItems: 1, maxItems: 10_000 },
  }),
  AddRunsResult: object({
    added: { type: 'array', items: uuid },
    already_watched: { type: 'array', items: uuid },
    already_finished: { type: 'array', items: uuid },
  }),
  Removed: object({ run_id: uuid, removed: { const: true } }),
  Error: object({
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        field: { type: 'string' },
      },
    },
  }),
};

const json = (schema: string) => ({
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});
const answer = (description: string, schema: string) => ({ description, ...json(schema) });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), answer('an error', 'Error')]));
const runIdParameter = { name: 'run_id', in: 'path', required: true, schema: uuid };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'dataframer-run-watcher run API',
    version: '0.1.0',
    description: 'Add, list, inspect and remove the runs a watcher watches (docs/api.md).',
  },
  components: {
    schemas,
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } },
  },
  security: [{ adminToken: [] }],
  paths: {
    '/api/runs': {
      get: {
        summary: 'The runs, newest first, a page at a time',
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
          { name: 'state', in: 'query', schema: { enum: ['active', 'finished'] } },
          { name: 'status', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': answer('a page of runs', 'RunPage'), ...errors(400, 401) },
      },
      post: {
        summary: 'Watch runs (idempotent)',
        requestBody: { required: true, ...json('AddRunsRequest') },
        responses: {
          '200': answer('what became of each run', 'AddRunsResult'),
          ...errors(400, 401, 413, 415),
        },
      },
    },
    '/api/runs/{run_id}': {
      get: {
        summary: 'One run, with its snapshot and deliveries',
        parameters: [runIdParameter],
        responses: { '200': answer('the run', 'RunDetail'), ...errors(400, 401, 404) },
      },
      delete: {
        summary: 'Stop watching a run; deliveries it owes are still made',
        parameters: [runIdParameter],
        responses: { '200': answer('removed', 'Removed'), ...errors(400, 401, 404) },
      },
    },
    '/api/deliveries/{delivery_id}/replay': {
      post: {
        summary: 'Owe a dead-lettered or disabled delivery again',
        parameters: [
          { name: 'delivery_id', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: { '200': answer('the delivery', 'Delivery'), ...errors(401, 404, 409) },
      },
    },
  },
} as const;
