import { defineConfig } from 'vitest/config';

// Tests that need system packages (Debian's python3-grpcio, protoc, an etcd binary...). Each file
// under test/system/ fails, never skips, when what it needs is missing: `.ci/run` installs the
// packages and then runs `npm run test:system`.
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
