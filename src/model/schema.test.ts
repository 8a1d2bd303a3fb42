import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonSchemas } from './config.ts';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schema');

describe('published JSON Schemas', () => {
  it.each(Object.keys(jsonSchemas()))('schema/%s matches the zod schemas (regenerate: nodeup schema --out schema)', async (name) => {
    const text = JSON.stringify(jsonSchemas()[name], null, 2) + '\n';
    expect(await fsp.readFile(path.join(dir, name), 'utf8')).toBe(text);
  });
});
