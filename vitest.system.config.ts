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
    // One file at a time: the replicas tests run three etcd members and three gateways on 2 s
    // leases and stop them with signals. Beside another file's etcd cluster and processes on a
    // 2-core machine, a keepalive can come after its lease ran out, and a scenario then plays in
    // an order the test does not describe (a hand-over to a replica already leaving, a lost leader).
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
  },
});
