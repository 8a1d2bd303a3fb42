import { describe, expect, it } from 'vitest';
import { renderNodeupUnit } from './nodeup-unit.ts';

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
