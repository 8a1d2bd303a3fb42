// A small SSH session on top of ssh2: connect (optionally through a bastion, via forwardOut), run
// commands with their output streamed line by line, upload files over SFTP. The host key is always
// checked against known_hosts unless the operator explicitly accepts any key.
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Duplex } from 'node:stream';
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { knownHostKeys, targetName, type SshTarget } from './target.ts';

export interface SshAuth {
  /** Private key (OpenSSH or PEM); never logged. */
  readonly privateKey?: Buffer;
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  readonly agent?: string;
}

export interface HostKeyPolicy {
  /** Contents of known_hosts files. */
  readonly knownHosts: string;
  /** Accept any host key (logged as a warning). */
  readonly acceptAny?: boolean;
}

export interface ConnectOptions {
  readonly target: SshTarget;
  readonly bastion?: SshTarget;
  readonly auth: SshAuth;
  readonly hostKeys: HostKeyPolicy;
  readonly readyTimeoutMs?: number;
  readonly log: Logger;
}

export interface ExecOptions {
  readonly input?: string | Buffer;
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function sshError(target: SshTarget, what: string, err: unknown): AgentError {
  return new AgentError('SSH', `${targetName(target)}: ${what}: ${errorMessage(err)}`, { cause: err, details: { host: targetName(target) } });
}

function connectOne(target: SshTarget, opts: ConnectOptions, sock?: Duplex): Promise<Client> {
  const client = new Client();
  let hostKeyProblem: string | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: opts.readyTimeoutMs ?? 20_000,
    keepaliveInterval: 15_000,
    ...(sock ? { sock } : {}),
    ...(opts.auth.privateKey ? { privateKey: opts.auth.privateKey } : {}),
    ...(opts.auth.agent ? { agent: opts.auth.agent } : {}),
    hostVerifier: (key: Buffer): boolean => {
      if (opts.hostKeys.acceptAny) {
        opts.log.warn({ host: targetName(target) }, 'host key not verified (--insecure-accept-any-host-key)');
        return true;
      }
      const known = knownHostKeys(opts.hostKeys.knownHosts, target.host, target.port);
      if (known.some((k) => k.equals(key))) return true;
      hostKeyProblem = known.length === 0 ? 'host key unknown: add it to known_hosts (ssh-keyscan), or pass --known-hosts FILE' : 'HOST KEY MISMATCH with known_hosts: refusing to connect';
      return false;
    },
  };
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', (err) => reject(sshError(target, hostKeyProblem ?? 'cannot connect', err)));
    client.connect(config);
  });
}

export class SshSession {
  readonly target: SshTarget;
  private readonly client: Client;
  private readonly bastion: Client | undefined;

  private constructor(target: SshTarget, client: Client, bastion: Client | undefined) {
    this.target = target;
    this.client = client;
    this.bastion = bastion;
  }

  static async connect(opts: ConnectOptions): Promise<SshSession> {
    if (!opts.bastion) return new SshSession(opts.target, await connectOne(opts.target, opts), undefined);
    const jump = await connectOne(opts.bastion, opts);
    try {
      const channel = await new Promise<ClientChannel>((resolve, reject) => {
        jump.forwardOut('127.0.0.1', 0, opts.target.host, opts.target.port, (err, ch) => (err ? reject(sshError(opts.target, `bastion ${targetName(opts.bastion!)} cannot reach it`, err)) : resolve(ch)));
      });
      return new SshSession(opts.target, await connectOne(opts.target, opts, channel), jump);
    } catch (err: unknown) {
      jump.end();
      throw err;
    }
  }

  /** Runs a command line through the remote shell; never rejects on a non-zero exit. */
  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch) => {
        if (err) {
          reject(sshError(this.target, 'cannot start a command', err));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const splitter = (stream: 'stdout' | 'stderr') => {
          let rest = '';
          return {
            push(chunk: Buffer) {
              if (!opts.onLine) return;
              rest += chunk.toString('utf8');
              const lines = rest.split('\n');
              rest = lines.pop() ?? '';
              for (const l of lines) opts.onLine(l, stream);
            },
            flush() {
              if (opts.onLine && rest) opts.onLine(rest, stream);
              rest = '';
            },
          };
        };
        const so = splitter('stdout');
        const se = splitter('stderr');
        let code: number | undefined;
        ch.on('data', (d: Buffer) => {
          out.push(d);
          so.push(d);
        });
        ch.stderr.on('data', (d: Buffer) => {
          errOut.push(d);
          se.push(d);
        });
        ch.on('exit', (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : 1);
        });
        ch.on('close', () => {
          so.flush();
          se.flush();
          resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
        });
        if (opts.input !== undefined) ch.end(opts.input);
        else ch.end();
      });
    });
  }

  /**
   * Starts a command and keeps its channel open: resolves when `ready` appears on stdout (the
   * command holds something, e.g. a lock, until its stdin closes) or with the exit code when it
   * ends first. `release()` closes stdin and waits for the command to end.
   */
  hold(command: string, ready: string): Promise<{ held: true; release: () => Promise<void> } | { held: false; code: number; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch) => {
        if (err) {
          reject(sshError(this.target, 'cannot start a command', err));
          return;
        }
        let stdout = '';
        let stderr = '';
        let code = 1;
        let held = false;
        const closed = new Promise<void>((r) => ch.on('close', () => r()));
        ch.on('data', (d: Buffer) => {
          stdout += d.toString('utf8');
          if (!held && stdout.includes(ready)) {
            held = true;
            resolve({
              held: true,
              release: async () => {
                ch.end();
                await closed;
              },
            });
          }
        });
        ch.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        ch.on('exit', (c: number | null) => (code = c ?? 1));
        void closed.then(() => {
          if (!held) resolve({ held: false, code, stderr });
        });
      });
    });
  }

  /** Uploads a local file over SFTP. */
  upload(localPath: string, remotePath: string, mode: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) {
          reject(sshError(this.target, 'cannot open SFTP', err));
          return;
        }
        sftp.fastPut(localPath, remotePath, { mode }, (e) => {
          sftp.end();
          if (e) reject(sshError(this.target, `cannot upload to ${remotePath}`, e));
          else resolve();
        });
      });
    });
  }

  close(): void {
    this.client.end();
    this.bastion?.end();
  }
}
