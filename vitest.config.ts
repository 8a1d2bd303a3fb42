import { defineConfig } from 'vitest/config';

// Three layers: fast unit and golden tests (seconds, any machine), integration tests against real
// parts (apt, dnf, etcd, containerd, MinIO, a registry, sshd), and VM suites (QEMU guests).
/** The etcd dead-member test: 10 grace periods of 10 s, etcd processes mostly idle (166 s in CI). */
const waitingFiles = ['tests/integration/etcd-dead-member.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'tests/golden/**/*.test.ts', 'tests/conformance/**/*.test.ts', 'scripts/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          exclude: [...waitingFiles],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        // Integration files that spend their time waiting (grace periods measured in real time):
        // a second lane beside the serial one, so CI does not sit idle through them.
        test: {
          name: 'integration-waits',
          include: [...waitingFiles],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'vm',
          include: ['tests/vm/**/*.test.ts'],
          testTimeout: 3_600_000,
          hookTimeout: 3_600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
