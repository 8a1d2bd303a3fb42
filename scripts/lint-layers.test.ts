// The layer rule of eslint.config.js fails on imports that run up a layer or across components, and
// lets the allowed directions through. Linted with ESLint's Node API on snippets at virtual paths.
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = (await import(path.join(repo, 'eslint.config.js'))) as { boundaries: Linter.Config[]; schemaLeaf: Linter.Config; layers: Record<string, string[]> };
const eslint = new ESLint({
  cwd: repo,
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...config.boundaries, config.schemaLeaf],
});

async function messages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(repo, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layer rule', () => {
  it.each([
    ['src/engine/graph.ts', "import { NodeModel } from '../model/node-model.ts';", 'the engine imports no layer above it'],
    ['src/engine/host/node-host.ts', "import { runNode } from '../../app/run.ts';", 'the engine imports no layer above it'],
    ['src/model/node-model.ts', "import { x } from '../kubelet/component.ts';", "the model imports only components' schema.ts leaves"],
    ['src/model/config.ts', "import { x } from '../app/run.ts';", 'the model imports no application code'],
    ['src/addons/component.ts', "import { x } from '../controlplane/render-manifests.ts';", 'components never import each other'],
    ['src/images/component.ts', "import { x } from '../containerd/component.ts';", 'components never import each other'],
    ['src/kubelet/component.ts', "import { x } from '../app/run.ts';", 'a component imports only the engine and the model'],
    ['src/kubelet/render-unit.ts', "import { x } from '../kube-proxy/component.ts';", 'components never import each other'],
    ['src/kubelet/render-unit.ts', "import * as fs from 'node:fs';", 'renderers are pure'],
    ['src/kubelet/component.ts', "import * as fs from 'node:fs';", 'use the Host facade'],
    ['src/kubelet/schema.ts', "import { x } from '../model/config.ts';", 'a schema.ts leaf imports only zod and src/engine'],
  ])('%s: %s fails', async (file, code, why) => {
    const found = await messages(file, code);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((m) => m.startsWith('no-restricted-imports: '))).toBe(true);
    expect(found.some((m) => m.includes(why))).toBe(true);
  });

  it.each([
    ['src/model/config.ts', "import { KubeletSpec } from '../kubelet/schema.ts';"],
    ['src/model/node-model.ts', "import { AgentError } from '../engine/errors.ts';"],
    ['src/kubelet/component.ts', "import { containerdUnitKey } from '../model/paths/containerd.ts';\nimport { UnitTask } from '../engine/tasks/unit.ts';"],
    ['src/kubelet/schema.ts', "import { DnsName } from '../engine/schema-util.ts';"],
    ['src/app/components.ts', "import { kubeletComponent } from '../kubelet/component.ts';"],
    ['src/orchestrator/launch.ts', "import { renderBootstrapScript } from '../bootstrap/render-userdata.ts';"],
    ['src/engine/tasks/unit.ts', "import type { Host } from '../host/host.ts';"],
    ['src/kubelet/kubelet.test.ts', "import { runNode } from '../app/run.ts';"],
  ])('%s: %s passes', async (file, code) => {
    expect(await messages(file, code)).toEqual([]);
  });
});

// Each folder's doc file opens with what the folder owns and the layer's import rule, in the words of
// README "How it works": a newcomer opening the folder reads where it sits.
const docFile: Record<string, string> = { engine: 'task.ts', model: 'node-model.ts', statestore: 'open.ts', app: 'main.ts', bootstrap: 'userdata-command.ts', ssh: 'command.ts', orchestrator: 'cli.ts', mirror: 'command.ts' };
const layerWord: Record<string, string> = { engine: 'engine', model: 'model', components: 'component', application: 'application' };

describe('folder doc files', () => {
  const rows = Object.entries(config.layers).flatMap(([layer, folders]) => folders.map((f) => [f, layer] as const));
  it.each(rows)('src/%s says its layer (%s) in its opening comment', async (folder, layer) => {
    const file = path.join(repo, 'src', folder, docFile[folder] ?? 'component.ts');
    const lines = (await fsp.readFile(file, 'utf8')).split('\n');
    const opening = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
    expect(opening.length, `${file} opens with a comment`).toBeGreaterThan(1);
    expect(opening.some((l) => l.startsWith(`// Layer: ${layerWord[layer] ?? layer}`)), `${file}: a "// Layer: ${layerWord[layer] ?? layer}" line`).toBe(true);
  });
});
