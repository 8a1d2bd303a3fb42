// ESLint flat config: typescript-eslint type-checked rules plus the folder boundaries of STYLE.md.
import tseslint from 'typescript-eslint';

const outsideWorld = ['node:fs', 'node:fs/promises', 'node:child_process', 'execa', 'undici', 'tar', 'systeminformation'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/testdata/**', 'images/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/only-throw-error': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'no enums: use string unions' }],
    },
  },
  {
    // Components and renderers reach the outside world only through the Host facade.
    files: ['src/**/*.ts'],
    ignores: [
      'src/engine/host/**',
      'src/statestore/**',
      'src/orchestrator/**',
      'src/ssh/**',
      'src/app/main.ts',
      'src/**/*.test.ts',
      'src/**/test-*.ts',
      'src/**/cli.ts',
      'src/bootstrap/**',
    ],
    rules: {
      'no-restricted-imports': ['error', { paths: outsideWorld.map((name) => ({ name, message: 'use the Host facade (src/engine/host)' })) }],
    },
  },
  {
    files: ['src/**/render-*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/host/**', 'node:*'], message: 'renderers are pure: plain data in, string out' }] }],
    },
  },
  {
    files: ['**/*.test.ts', 'tests/**', 'scripts/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
