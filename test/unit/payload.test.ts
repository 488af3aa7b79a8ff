import { describe, expect, it } from '@jest/globals';
import { MAX_WEBHOOK_FILES, newRunRecord, storedRecord } from '../../src/domain/run.js';
import { buildWebhookBody } from '../../src/notify/webhook-body.js';
import { MAX_STATUS_CHARS, MAX_TEXT_CHARS } from '../../src/util/text.js';
import { exampleRun } from '../helpers/run-body.js';

const RUN_ID = exampleRun.id;
const AT = new Date('2026-11-23T06:00:00.000Z');

describe('webhook body bounds', () => {
  it('keeps the real file count when built later from a stored (cut) snapshot', () => {
    const files = Array.from({ length: 5_000 }, (_, i) => ({ id: `f${i}` }));
    const record = {
      ...newRunRecord(RUN_ID, 0, 0),
      snapshot: { id: RUN_ID, status: 'PROCESSING', generated_files: files },
    };
    const stored = storedRecord(record);
    expect(stored.snapshot?.generated_files).toHaveLength(MAX_WEBHOOK_FILES);
    // A restart reads it back as JSON; a watch timeout's webhook is built from it.
    const reread = JSON.parse(JSON.stringify(stored.snapshot)) as typeof stored.snapshot;
    const body = buildWebhookBody('run.watch_timeout', RUN_ID, reread, AT);
    expect(body.data).toMatchObject({
      generated_files_total: 5_000,
      generated_files_truncated: true,
    });
  });

  it('lists at most 1,000 files, says how many there were, and passes only the spec fields', () => {
    // A snapshot kept by an older version may still hold fields the spec does not list.
    const files = Array.from({ length: 200_000 }, (_, i) => ({
      id: `f${i}`,
      path: `out/${i}.csv`,
      size_bytes: i,
      checksum: 'c'.repeat(100),
    }));
    const body = buildWebhookBody(
      'run.succeeded',
      RUN_ID,
      { id: RUN_ID, status: 'SUCCEEDED', generated_files: files },
      AT,
    );
    expect(MAX_WEBHOOK_FILES).toBe(1_000);
    expect(body.data.generated_files).toHaveLength(1_000);
    expect(body.data.generated_files[999]).toEqual({
      id: 'f999',
      path: 'out/999.csv',
      size_bytes: 999,
    });
    expect(body.data).toMatchObject({
      generated_files_total: 200_000,
      generated_files_truncated: true,
    });
    expect(JSON.stringify(body).length).toBeLessThan(60_000);
  });

  it('cuts free text and the status', () => {
    const long = 'n'.repeat(100_000);
    const body = buildWebhookBody(
      'run.failed',
      RUN_ID,
      {
        id: RUN_ID,
        status: long,
        spec_name: long,
        dataset_name: long,
        generated_files: [{ path: long }],
      },
      AT,
    );
    expect(body.data.status).toHaveLength(MAX_STATUS_CHARS);
    expect(body.data.spec_name).toHaveLength(MAX_TEXT_CHARS);
    expect(body.data.dataset_name).toHaveLength(MAX_TEXT_CHARS);
    expect(body.data.generated_files[0]?.path).toHaveLength(MAX_TEXT_CHARS);
    expect(body.data).toMatchObject({ generated_files_total: 1, generated_files_truncated: false });
  });

  it('is null-filled with no snapshot', () => {
    expect(buildWebhookBody('run.not_found', RUN_ID, null, AT).data).toMatchObject({
      status: null,
      generated_files: [],
      generated_files_total: 0,
      generated_files_truncated: false,
    });
  });
});
