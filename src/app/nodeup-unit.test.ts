import { describe, expect, it } from 'vitest';
import { nodeupUnitTask, renderNodeupUnit } from './nodeup-unit.ts';

describe('renderNodeupUnit', () => {
  const unit = renderNodeupUnit({ binary: '/usr/local/bin/nodeup', config: '/etc/nodeup/boot.yaml' });

  it('renders nodeup.service (golden)', async () => {
    await expect(unit).toMatchFileSnapshot('testdata/nodeup.service');
  });

  it('reads the optional environment file and appends NODEUP_APPLY_ARGS, unquoted so systemd splits it into words', () => {
    expect(unit).toContain('\nEnvironmentFile=-/etc/nodeup/environment\n');
    expect(unit).toContain('\nExecStart=/usr/local/bin/nodeup apply --config /etc/nodeup/boot.yaml --log-format json $NODEUP_APPLY_ARGS\n');
    expect(unit).not.toContain('"$NODEUP_APPLY_ARGS"');
    expect(unit).not.toContain('${NODEUP_APPLY_ARGS}');
  });
});

describe('nodeupUnitTask', () => {
  it('installs the rendered unit, never left running by the install; bake and install-unit differ only in enable and start', () => {
    const input = { binary: '/usr/local/bin/nodeup', config: '/etc/nodeup/boot.yaml', unitDir: '/etc/systemd/system' };
    const baked = nodeupUnitTask({ ...input, enabled: false });
    const installed = nodeupUnitTask({ ...input, enabled: true, noBlock: true });
    expect(baked.key).toBe('unit:nodeup.service');
    expect(baked.spec).toMatchObject({ name: 'nodeup.service', unitDir: '/etc/systemd/system', enabled: false, running: false, content: renderNodeupUnit(input) });
    expect(baked.spec.noBlock).toBeUndefined();
    expect(installed.spec).toMatchObject({ enabled: true, running: false, noBlock: true, content: baked.spec.content });
  });
});
