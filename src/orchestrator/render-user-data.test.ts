import { describe, expect, it } from 'vitest';
import * as yaml from 'js-yaml';
import { renderLaunchScript, renderUserData, shQuote, type UserDataInput } from './render-user-data.ts';
import { renderBootConfig } from './launch.ts';
import { parseBootConfig } from '../agent/config.ts';

const boot = renderBootConfig({
  stateStore: 'file:///var/lib/nodeup/launch-store',
  clusterName: 'c1',
  instanceGroup: 'workers',
  nodeConfigHash: 'sha256:' + 'a'.repeat(64),
  nodeName: 'workers-1',
  assetMirrors: ['http://10.0.2.2:8080/assets'],
});

const input: UserDataInput = {
  nodeName: 'workers-1',
  bootConfig: boot,
  files: [{ path: '/var/lib/nodeup/launch-store/igconfig/workers/node.yaml', content: 'kind: NodeConfig\n# exact bytes, trailing spaces  \n', mode: '0600' }],
  binary: { url: 'http://10.0.2.2:8080/files/nodeup', sha256: 'b'.repeat(64) },
  reportUrl: 'http://10.0.2.2:8080',
  applyArgs: ['--only', 'node-files'],
};

describe('renderUserData', () => {
  it('renders the qemu cloud-config (golden)', async () => {
    await expect(renderUserData(input)).toMatchFileSnapshot('testdata/qemu-worker/expected/user-data');
  });

  it('renders the cloud user-data without a report URL or binary (golden)', async () => {
    const { reportUrl: _r, binary: _b, ...rest } = input;
    await expect(renderUserData({ ...rest, files: [] })).toMatchFileSnapshot('testdata/cloud-baked/expected/user-data');
  });

  it('is a cloud-config whose files round-trip byte-exact and whose boot config validates', () => {
    const text = renderUserData(input);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = yaml.load(text) as { write_files: { path: string; content: string; encoding?: string; permissions: string }[]; runcmd: string[][] };
    const store = doc.write_files.find((f) => f.path.endsWith('node.yaml'));
    expect(store?.encoding).toBe('b64');
    expect(Buffer.from(store!.content, 'base64').toString('utf8')).toBe(input.files[0]!.content);
    const bootFile = doc.write_files.find((f) => f.path === '/etc/nodeup/boot.yaml');
    expect(bootFile?.permissions).toBe('0600');
    const parsed = parseBootConfig(bootFile!.content, 'boot.yaml');
    expect(parsed.nodeName).toBe('workers-1');
    expect(parsed.assetMirrors).toEqual(['http://10.0.2.2:8080/assets']);
    expect(doc.runcmd).toEqual([['/usr/local/lib/nodeup/launch-boot.sh']]);
  });

  it('pins the binary by SHA-256 and forwards apply arguments', () => {
    const s = renderLaunchScript(input);
    expect(s).toContain(`want=${'b'.repeat(64)}`);
    expect(s).toContain('sha256sum -c');
    expect(s).toContain('/usr/local/bin/nodeup apply --config /etc/nodeup/boot.yaml --log-format json --only node-files');
    expect(s).toContain('post "receipt/$NODE" @/var/lib/nodeup/status.json');
  });

  it.each([
    ['plain', 'plain'],
    ['with space', "'with space'"],
    ["it's", `'it'\\''s'`],
    ['$(x)', "'$(x)'"],
  ])('shQuote(%j)', (inp, out) => {
    expect(shQuote(inp)).toBe(out);
  });
});
