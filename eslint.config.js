// ESLint flat config: typescript-eslint type-checked rules plus the folder boundaries of STYLE.md.
import tseslint from 'typescript-eslint';

const outsideWorld = ['node:fs', 'node:fs/promises', 'node:child_process', 'execa', 'undici', 'tar', 'systeminformation'];

// The layers of README "How it works": an import may point to the same layer or a lower one, and a
// component never imports another component's folder (what it needs is a value in src/model).
// engine < model < components < application. Component config sections (`<component>/schema.ts`)
// are leaves the model may import: they import only zod and the engine's schema helpers.
export const layers = {
  engine: ['engine'],
  model: ['model'],
  components: ['packages', 'containerd', 'kubelet', 'kube-proxy', 'etcd', 'controlplane', 'images', 'addons', 'node-prereqs', 'pod-routes', 'statestore'],
  application: ['app', 'bootstrap', 'ssh', 'orchestrator', 'mirror'],
};

/** A relative import whose first folder after the `../` steps is one of `folders`. */
const into = (folders, rest = '') => `^(\\.\\./)+(${folders.join('|')})/${rest}`;
const layerRule = (folder) => {
  const { model, components, application } = layers;
  const others = components.filter((c) => c !== folder);
  if (folder === 'engine') return [{ regex: into([...model, ...components, ...application]), message: 'the engine imports no layer above it' }];
  if (folder === 'model')
    return [
      { regex: into(components, '(?!schema\\.ts$)'), message: 'the model imports only components\' schema.ts leaves' },
      { regex: into(application), message: 'the model imports no application code' },
    ];
  if (components.includes(folder))
    return [
      { regex: into(application), message: 'a component imports only the engine and the model' },
      { regex: into(others), message: 'components never import each other: share a value or key through src/model' },
    ];
  return [];
};
const restrictedImports = (folder, { outside = true, pure = false } = {}) => [
  'error',
  {
    paths: outside ? outsideWorld.map((name) => ({ name, message: 'use the Host facade (src/engine/host)' })) : [],
    patterns: [
      ...layerRule(folder),
      ...(pure ? [{ group: ['**/host/**', 'node:*'], message: 'renderers are pure: plain data in, string out' }] : []),
    ],
  },
];
// Folders that may reach the outside world directly (the host facade itself, state-store clients,
// the application's commands and provisioning tools).
const outsideAllowed = ['src/engine/host/**', 'src/statestore/**', 'src/orchestrator/**', 'src/ssh/**', 'src/bootstrap/**', 'src/mirror/**', 'src/app/main.ts', 'src/app/sea-main.ts', 'src/app/cli.ts', 'src/app/etcd-command.ts'];
const tests = ['src/**/*.test.ts', 'src/**/test-*.ts'];

export const boundaries = Object.values(layers)
  .flat()
  .flatMap((folder) => [
    { files: [`src/${folder}/**/*.ts`], ignores: [...tests, ...outsideAllowed], rules: { 'no-restricted-imports': restrictedImports(folder) } },
    { files: outsideAllowed.filter((g) => g.startsWith(`src/${folder}/`)), ignores: tests, rules: { 'no-restricted-imports': restrictedImports(folder, { outside: false }) } },
    { files: [`src/${folder}/**/render-*.ts`], ignores: tests, rules: { 'no-restricted-imports': restrictedImports(folder, { pure: true }) } },
  ])
  .filter((c) => c.files.length > 0);

// A component's config section is a leaf: zod and the engine's schema helpers only.
export const schemaLeaf = {
  files: ['src/*/schema.ts'],
  ignores: ['src/model/**', 'src/engine/**'],
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ regex: '^(\\./|\\.\\./(?!engine/))', message: 'a schema.ts leaf imports only zod and src/engine' }] }],
  },
};

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
    files: ['src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      // The host's LANG would decide the order of what nodeup renders (src/engine/text-order.ts).
      'no-restricted-properties': ['error', { property: 'localeCompare', message: 'use compareText (src/engine/text-order.ts): the same order on every host' }],
    },
  },
  ...boundaries,
  schemaLeaf,
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
