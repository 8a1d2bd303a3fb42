// `nodeup userdata` end to end on a file:// state store: the hash comes from the stored config.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../app/cli.ts';
import { configHash } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { exampleNodeConfig, publishNodeConfig } from '../app/example.ts';
import { silentLogger } from '../engine/log.ts';
import { FileStore } from '../statestore/file-store.ts';
import { renderBootstrapScript } from './render-userdata.ts';
import { parseSha256File, renderUserData, userdataCommand } from './userdata-command.ts';

let dir: string;
let storeUrl: string;
const h = 'f'.repeat(64);

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-userdata-cmd-'));
  storeUrl = pathToFileURL(path.join(dir, 'state')).href;
  await publishNodeConfig(new FileStore(storeUrl), exampleNodeConfig('nodes', 'worker'), 'test');
  await fsp.mkdir(path.join(dir, 'dist'));
  await fsp.writeFile(path.join(dir, 'dist/nodeup-linux-amd64.sha256'), `${h}  nodeup-linux-amd64\n`);
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<string> {
  const { values, positionals } = parseCommandLine(userdataCommand, args);
  let out = '';
  const code = await userdataCommand.run({ values, positionals, log: silentLogger, out: (t) => (out += t) });
  expect(code).toBe(0);
  return out;
}

describe('nodeup userdata', () => {
  it('reads the node config hash from the store and the binary hash from --dist', async () => {
    const stored = await fsp.readFile(path.join(dir, 'state/igconfig/nodes/node.yaml'));
    const out = await run(['--state-store', storeUrl, '--cluster', 'example', '--instance-group', 'nodes', '--mirror', 'https://r.example.com/v1', '--dist', path.join(dir, 'dist')]);
    expect(out).toContain(`nodeConfigHash: ${configHash(stored)}`);
    expect(out).toContain(`NODEUP_SHA256_AMD64='${h}'`);
    expect(out).toContain(`NODEUP_SHA256_ARM64=''`);
  });

  it('writes gzip to --out and refuses a group of another cluster', async () => {
    await run(['--state-store', storeUrl, '--cluster', 'example', '--instance-group', 'nodes', '--mirror', 'https://r.example.com', '--sha256-amd64', h, '--gzip', '--out', path.join(dir, 'ud.gz')]);
    const gz = await fsp.readFile(path.join(dir, 'ud.gz'));
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    const plain = gunzipSync(gz).toString();
    expect(plain.startsWith('#!/bin/bash\n')).toBe(true);
    expect(gz.length).toBeLessThan(plain.length / 2);
    const { values, positionals } = parseCommandLine(userdataCommand, ['--state-store', storeUrl, '--cluster', 'other', '--instance-group', 'nodes', '--mirror', 'https://r.example.com', '--sha256-amd64', h]);
    await expect(userdataCommand.run({ values, positionals, log: silentLogger, out: () => undefined })).rejects.toThrow(AgentError);
  });
});

describe('parseSha256File', () => {
  it.each([
    [`${'a'.repeat(64)}  nodeup-linux-amd64\n`, 'a'.repeat(64)],
    [`${'B'.repeat(64)}\n`, 'b'.repeat(64)],
  ])('reads %j', (text, want) => {
    expect(parseSha256File(text, 'f')).toBe(want);
  });
  it('refuses garbage', () => {
    expect(() => parseSha256File('nope', 'f')).toThrow(AgentError);
  });
});

describe('renderUserData', () => {
  it('gzip is the same script, smaller', () => {
    const input = { bootConfig: { apiVersion: 'nodeup.dev/v1alpha1' as const, kind: 'BootConfig' as const, stateStore: 's3://b/p', clusterName: 'c', instanceGroup: 'g', nodeConfigHash: `sha256:${'a'.repeat(64)}`, assetMirrors: [] }, mirrors: ['https://m.example.com'], sha256: { amd64: h } };
    const gz = renderUserData(input, { gzip: true });
    expect(gunzipSync(gz).toString()).toBe(renderBootstrapScript(input));
    expect(renderUserData(input).toString()).toBe(renderBootstrapScript(input));
  });
});
