import { describe, expect, it } from 'vitest';
import { commandTable } from './command-table.ts';
import { mainHelp } from './cli.ts';

describe('command table', () => {
  it('names each command once', () => {
    const names = commandTable.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('apply');
    expect(names).toContain('version');
  });

  it.each(commandTable.map((c) => [c.name, c] as const))('%s: load() returns the command with the summary --help lists', async (name, entry) => {
    const cmd = await entry.load();
    expect(cmd.name).toBe(name);
    expect(cmd.summary).toBe(entry.summary);
    expect(typeof cmd.run).toBe('function');
  });

  it('lists every command in the main help without loading any', () => {
    const help = mainHelp(commandTable);
    for (const c of commandTable) expect(help).toMatch(new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  });
});
