import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/system/ needs packages beyond Node.js (python3-grpcio, etcd...): `npm run test:system`
    // runs it once those are installed, so `npm test` passes on a machine with Node.js alone.
    exclude: ['test/system/**', '**/node_modules/**'],
    // Integration tests start real servers and child processes; give them room on a 2-core box.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
