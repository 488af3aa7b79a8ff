import { afterEach } from '@jest/globals';
import { endAllChildren } from './watcher-process.js';

// Every process a test started is ended when the test ends, passed or failed, so a failed
// assertion never leaves a watcher behind that keeps jest (and CI) from exiting.
afterEach(endAllChildren);
