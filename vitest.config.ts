import { defineConfig } from 'vitest/config';

// Three layers: fast unit and golden tests (seconds, any machine), integration tests against real
// parts (apt, dnf, etcd, containerd, MinIO, a registry, sshd), and VM suites (QEMU guests).
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
