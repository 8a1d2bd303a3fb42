// A minimal, deterministic TOML writer for containerd's config: nested tables of scalars and arrays
// of scalars. Keys keep their insertion order (the renderer's order is the golden order); tables
// are written after a table's own keys, as `[a.b."c.d"]` headers. Pure.
import { splitDottedPath } from './schema.ts';

export type TomlScalar = string | number | boolean;
export type TomlValue = TomlScalar | readonly TomlScalar[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function scalar(v: TomlScalar): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (!Number.isFinite(v)) throw new Error(`toml: cannot write the number ${v}`);
  return String(v);
}

function value(v: TomlScalar | readonly TomlScalar[]): string {
  if (Array.isArray(v)) return `[${(v as readonly TomlScalar[]).map(scalar).join(', ')}]`;
  return scalar(v as TomlScalar);
}

/** Writes a document: top-level keys first, then every table with keys (or empty) under a header. */
export function writeToml(doc: TomlTable, indent = '  '): string {
  const lines: string[] = [];
  const emit = (table: TomlTable, path: readonly string[]): void => {
    const keys = Object.entries(table).filter(([, v]) => !isTable(v));
    const tables = Object.entries(table).filter(([, v]) => isTable(v)) as [string, TomlTable][];
    const pad = path.length === 0 ? '' : indent;
    if (path.length > 0 && (keys.length > 0 || tables.length === 0)) {
      if (lines.length > 0) lines.push('');
      lines.push(`[${path.map(tomlKey).join('.')}]`);
    }
    for (const [k, v] of keys) lines.push(`${pad}${tomlKey(k)} = ${value(v as TomlScalar | readonly TomlScalar[])}`);
    for (const [k, v] of tables) emit(v, [...path, k]);
  };
  emit(doc, []);
  return lines.join('\n') + '\n';
}

/**
 * Sets a dotted path (`a."b.c".d`) in a document, creating tables on the way. A path through a
 * non-table value replaces it. Returns a new document; the input is not changed.
 */
export function setPath(doc: TomlTable, dotted: string, v: TomlScalar | readonly TomlScalar[]): TomlTable {
  const parts = splitDottedPath(dotted);
  if (!parts) throw new Error(`toml: malformed dotted path ${dotted}`);
  const root = structuredClone<TomlTable>(doc);
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (!isTable(next)) cur[p] = {};
    cur = cur[p] as TomlTable;
  }
  cur[parts[parts.length - 1] as string] = Array.isArray(v) ? [...(v as readonly TomlScalar[])] : v;
  return root;
}
