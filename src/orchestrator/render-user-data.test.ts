import { describe, expect, it } from 'vitest';
import * as yaml from 'js-yaml';
import { environmentPath, renderEnvironmentFile, renderLaunchScript, renderUserData, shQuote, type UserDataInput } from './render-user-data.ts';
import { launchBootConfig, launchEnvironment, machineUserData, type BinaryPins } from './user-data.ts';
import { parseBootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { renderBootstrapScript, userDataLimitBytes } from '../bootstrap/render-userdata.ts';

const boot = launchBootConfig({
  stateStore: 'file:///var/lib/nodeup/launch-store',
  clusterName: 'c1',
  instanceGroup: 'workers',
  nodeConfigHash: 'sha256:' + 'a'.repeat(64),
  nodeName: 'workers-1',
  assetMirrors: ['http://10.0.2.2:8080/assets'],
});
const pins: BinaryPins = { mirrors: ['http://10.0.2.2:8080/files'], sha256: { amd64: 'b'.repeat(64) } };
const bootstrap = renderBootstrapScript({ bootConfig: boot, mirrors: pins.mirrors, sha256: pins.sha256 });

const input: UserDataInput = {
  nodeName: 'workers-1',
  bootstrap,
  binarySha256: 'b'.repeat(64),
  files: [{ path: '/var/lib/nodeup/launch-store/igconfig/workers/node.yaml', content: 'kind: NodeConfig\n# exact bytes, trailing spaces  \n', mode: '0600' }],
  environment: launchEnvironment(['--only', 'node-files']),
  reportUrl: 'http://10.0.2.2:8080',
  preCommands: ['networkctl reload', 'networkctl reconfigure eth1 || true'],
};

interface CloudConfig {
  write_files: { path: string; content: string; encoding?: string; permissions: string }[];
  runcmd: string[][];
}
const filesOf = (text: string): Record<string, { content: string; permissions: string }> =>
  Object.fromEntries(
    (yaml.load(text) as CloudConfig).write_files.map((f) => [f.path, { permissions: f.permissions, content: f.encoding === 'b64' ? Buffer.from(f.content, 'base64').toString('utf8') : f.content }]),
  );

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err: unknown) {
    return err instanceof AgentError ? err.code : 'not-agent-error';
  }
  return undefined;
}

describe('renderUserData', () => {
  it('renders the qemu cloud-config (golden)', async () => {
    await expect(renderUserData(input)).toMatchFileSnapshot('testdata/qemu-worker/expected/user-data');
  });

  it('renders the cloud user-data without a report URL (golden)', async () => {
    const { reportUrl: _r, preCommands: _p, ...rest } = input;
    await expect(renderUserData({ ...rest, files: [] })).toMatchFileSnapshot('testdata/cloud-baked/expected/user-data');
  });

  it('carries the bootstrap script of `nodeup userdata` byte for byte, the store files byte-exact and a valid boot config', () => {
    const text = renderUserData(input);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const files = filesOf(text);
    expect(files['/usr/local/lib/nodeup/bootstrap.sh']!.content).toBe(bootstrap);
    expect(files['/var/lib/nodeup/launch-store/igconfig/workers/node.yaml']!.content).toBe(input.files[0]!.content);
    const heredoc = /<<'NODEUP_BOOT_CONFIG_EOF'\n([\s\S]*?)\nNODEUP_BOOT_CONFIG_EOF\n/.exec(bootstrap)![1]!;
    const parsed = parseBootConfig(heredoc, 'boot.yaml');
    expect(parsed).toMatchObject({ nodeName: 'workers-1', assetMirrors: ['http://10.0.2.2:8080/assets'], stateStore: 'file:///var/lib/nodeup/launch-store' });
    // the harness reads the served store's port from this line of the user-data
    expect(text).toContain('stateStore: file:///var/lib/nodeup/launch-store\n');
    expect((yaml.load(text) as CloudConfig).runcmd).toEqual([['/usr/local/lib/nodeup/launch-boot.sh']]);
    // cloud-init writes the boot config only through the bootstrap script
    expect(files['/etc/nodeup/boot.yaml']).toBeUndefined();
  });

  it('writes the apply arguments for every run of nodeup.service to /etc/nodeup/environment, mode 0600', () => {
    const env = filesOf(renderUserData(input))[environmentPath]!;
    expect(env.permissions).toBe('0600');
    expect(env.content).toContain('\nNODEUP_APPLY_ARGS="--only node-files"\n');
    expect(filesOf(renderUserData({ ...input, environment: [] }))[environmentPath]).toBeUndefined();
  });

  it('stays far under the 16 KB user-data limit', () => {
    expect(Buffer.byteLength(renderUserData(input))).toBeLessThan(userDataLimitBytes / 2);
  });

  it('refuses a bootstrap that is not the rendered script', () => {
    expect(codeOf(() => renderUserData({ ...input, bootstrap: '#!/bin/sh\necho hi\n' }))).toBe('USAGE');
  });
});

describe('renderLaunchScript', () => {
  const s = renderLaunchScript(input);

  it('reports booted, fetching (another binary on disk), started, then the receipt of nodeup.service\'s first run', () => {
    const order = ['event/$NODE/booted', 'networkctl reload', `!= ${'b'.repeat(64)} ]; then post "event/$NODE/fetching"`, 'rm -f /var/lib/nodeup/status.json', '/usr/local/lib/nodeup/bootstrap.sh || fail', 'event/$NODE/started', 'while [ ! -s /var/lib/nodeup/status.json ]', 'post "receipt/$NODE" @/var/lib/nodeup/status.json'];
    const at = order.map((o) => s.indexOf(o));
    expect(at.every((i) => i >= 0), JSON.stringify(at)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // nodeup.service runs apply (enabled before its first run); the launch script never does
    expect(s).not.toContain('nodeup apply');
    expect(s).toContain('NRestarts');
  });

  it('without a report URL only runs the pre-commands and the bootstrap script', () => {
    const { reportUrl: _r, ...rest } = input;
    const plain = renderLaunchScript(rest);
    expect(plain).not.toContain('post');
    expect(plain.trim().split('\n').slice(-2)).toEqual(['rm -f /var/lib/nodeup/status.json', 'exec /usr/local/lib/nodeup/bootstrap.sh']);
  });

});

describe('renderEnvironmentFile', () => {
  it('double-quotes each value (systemd strips the quotes; sh reads it too)', () => {
    const text = renderEnvironmentFile([['NODEUP_APPLY_ARGS', '--only node-files'], ['AWS_SECRET_ACCESS_KEY', 'ab/cd+ef=']]);
    expect(text.split('\n').slice(1)).toEqual(['NODEUP_APPLY_ARGS="--only node-files"', 'AWS_SECRET_ACCESS_KEY="ab/cd+ef="', '']);
  });

  it.each([['X', 'a"b'], ['X', 'a$b'], ['X', 'a\nB=1'], ['lower', 'v']])('refuses %j=%j', (name, value) => {
    expect(codeOf(() => renderEnvironmentFile([[name, value]]))).toBe('USAGE');
  });
});

describe('machineUserData', () => {
  it('puts the s3 settings in the boot config and the credentials only in the environment file', () => {
    const s3Boot = launchBootConfig({ ...boot, stateStore: 's3://lab/c1', s3: { endpoint: 'http://10.0.2.2:9000', region: 'us-east-1', forcePathStyle: true } });
    const text = machineUserData({
      name: 'workers-1',
      boot: s3Boot,
      pins,
      files: [],
      environment: launchEnvironment([], [['AWS_ACCESS_KEY_ID', 'labkey'], ['AWS_SECRET_ACCESS_KEY', 'labsecret123']]),
      reportUrl: 'http://10.0.2.2:8080',
    });
    const files = filesOf(text);
    const bootstrapText = files['/usr/local/lib/nodeup/bootstrap.sh']!.content;
    expect(bootstrapText).toContain('stateStore: s3://lab/c1\n');
    expect(bootstrapText).toContain('  endpoint: http://10.0.2.2:9000\n');
    expect(bootstrapText).toContain('  forcePathStyle: true\n');
    expect(bootstrapText).not.toContain('labsecret123');
    expect(files[environmentPath]).toEqual({ permissions: '0600', content: expect.stringContaining('AWS_SECRET_ACCESS_KEY="labsecret123"\n') });
    expect(files[environmentPath]!.content).not.toContain('NODEUP_APPLY_ARGS');
  });

  it('refuses a bad --s3-endpoint, naming the flag', () => {
    expect(() => launchBootConfig({ ...boot, stateStore: 's3://lab/c1', s3: { endpoint: 'not a url', region: 'us-east-1', forcePathStyle: true } })).toThrow(/--s3-endpoint/);
  });
});

describe('shQuote', () => {
  it.each([
    ['plain', 'plain'],
    ['with space', "'with space'"],
    ["it's", `'it'\\''s'`],
    ['$(x)', "'$(x)'"],
  ])('shQuote(%j)', (inp, out) => {
    expect(shQuote(inp)).toBe(out);
  });
});
