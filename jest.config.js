/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The image's tests need podman and a built image: `npm run test:image` runs them.
  testPathIgnorePatterns: ['/node_modules/', '\\.image\\.test\\.ts$'],
  setupFilesAfterEnv: ['<rootDir>/test/helpers/end-children.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 60_000,
};
