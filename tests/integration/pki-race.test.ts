// Two processes create the cluster CA at the same moment on one file:// state store: one CA.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { caNames, pkiLockKey, readCa } from '../../src/engine/pki/cluster-pki.ts';
import { certInfo } from '../../src/engine/pki/x509.ts';
import { FileStore } from '../../src/statestore/file-store.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

function runCreator(storeUrl: string, holder: string, startAt: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'pki-race-worker.ts'), storeUrl, holder, String(startAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`creator ${holder} exited ${code}: ${err}`));
    });
  });
}

describe('cluster CA creation race', () => {
  it.each([1, 2, 3])('two processes at the same moment end with one CA (round %i)', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-pki-race-'));
    dirs.push(dir);
    const url = pathToFileURL(dir).toString();
    const startAt = Date.now() + 1500; // both wait for the same instant, after node's start-up
    const results = await Promise.all([runCreator(url, 'cp-a', startAt), runCreator(url, 'cp-b', startAt)]);
    expect(results.sort()).toEqual(['created', 'existing']);
    const store = new FileStore(url);
    expect(await store.read(pkiLockKey)).toBeUndefined();
    for (const name of caNames) {
      const ca = await readCa(store, name);
      expect(certInfo(ca.certPem).isCa).toBe(true);
    }
    // Exactly one certificate per CA, no leftovers of a second attempt.
    const files = [...(await store.list('pki/'))].sort();
    expect(files).toEqual([...caNames.flatMap((n) => [`pki/${n}.crt`, `pki/${n}.key`]), 'pki/sa.key', 'pki/sa.pub'].sort());
  });
});
