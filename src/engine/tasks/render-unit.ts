// Pure renderer for systemd unit files: sections and keys in the order given, repeated keys as
// arrays, a managed-by header on top.
import { managedHeader } from './file.ts';

export type UnitValue = string | number | boolean | readonly (string | number)[];
export type UnitSection = Readonly<Record<string, UnitValue | undefined>>;

export interface UnitSpec {
  readonly Unit?: UnitSection;
  readonly Service?: UnitSection;
  readonly Timer?: UnitSection;
  readonly Install?: UnitSection;
}

function fmt(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

export function renderUnit(spec: UnitSpec): string {
  const out: string[] = [`# ${managedHeader}`];
  for (const section of ['Unit', 'Service', 'Timer', 'Install'] as const) {
    const body = spec[section];
    if (!body) continue;
    out.push('', `[${section}]`);
    for (const [k, v] of Object.entries(body)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v as readonly (string | number)[]) out.push(`${k}=${fmt(item)}`);
      else out.push(`${k}=${fmt(v as string | number | boolean)}`);
    }
  }
  return out.join('\n') + '\n';
}
