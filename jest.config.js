/**
 * One test command for everything. globalSetup starts real PostgreSQL (DATABASE_URL's server or an
 * embedded one) and a real Temporal dev server; every test file reaches them through process.env.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
  reporters: ['default', ['<rootDir>/test/harness/summary-reporter.js', {}]],
};
