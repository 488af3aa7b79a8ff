import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import nock from 'nock';

export { nock };

/**
 * Strict HTTP mocking for client unit tests: no real network, and a test fails if an
 * interceptor it set up was not used. The only module that imports nock.
 */
export function useStrictHttpMock(): void {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    const unused = nock.pendingMocks();
    nock.cleanAll();
    expect(unused).toEqual([]);
  });
  afterAll(() => {
    nock.enableNetConnect();
    nock.restore();
  });
}
