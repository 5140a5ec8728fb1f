import base from './jest.config.js';

/** The console's browser tests: Debian's Chromium, one file at a time (it is heavy on two cores). */
export default {
  ...base,
  testMatch: ['<rootDir>/test/browser/**/*.browser.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  maxWorkers: 1,
};
