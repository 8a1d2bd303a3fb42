// Shared by the package integration tests: a host that records the commands it runs (argv as the
// node would see them, chroot prefix removed), a tiny static HTTP server on 127.0.0.1 for local
// repositories (with a switch that answers 503 to the next N requests), and shell helpers.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { RunOptions, RunResult } from '../../src/engine/host/host.ts';
import { NodeHost, type NodeHostOptions } from '../../src/engine/host/node-host.ts';

export const sh = promisify(execFile);
export const repoRoot = path.resolve(import.meta.dirname, '../..');

export class RecordingHost extends NodeHost {
  readonly calls: string[] = [];
  constructor(opts: NodeHostOptions) {
    super(opts);
  }
  override run(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    const argv = file === 'chroot' && args[0] === this.root ? args.slice(1) : [file, ...args];
    this.calls.push(argv.join(' ').replaceAll(this.root, '<root>'));
    return super.run(file, args, opts);
  }
}

export interface RepoServer {
  readonly url: string;
  /** Every request path, in order. */
  readonly requests: string[];
  /** Answer 503 to the next n requests. */
  failNext(n: number): void;
  close(): Promise<void>;
}

export async function serveDir(dir: string): Promise<RepoServer> {
  const requests: string[] = [];
  let failing = 0;
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(p);
    if (failing > 0) {
      failing--;
      res.writeHead(503).end('busy');
      return;
    }
    const file = path.join(dir, path.normalize(p));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    fsp.stat(file).then(
      (st) => {
        if (!st.isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(file).pipe(res);
      },
      () => void res.writeHead(404).end(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    failNext: (n) => void (failing = n),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Fails with the name of the script that provides a missing tool or fixture. */
export async function requireTool(tool: string, script: string): Promise<void> {
  try {
    await sh('sh', ['-c', `command -v ${tool}`]);
  } catch {
    throw new Error(`${tool} is missing on this machine: run ${script} (CI runs it before the integration tests)`);
  }
}
