// Layer: engine (README "How it works"). Imports no project layer above it: only src/engine.
// The one facade to the outside world. Everything that touches files, processes or the network goes
// through a Host; tests swap in createTestHost() (a real temp root, scripted commands, mocked HTTP).

export interface RunOptions {
  readonly input?: string | Buffer;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  /** Exit codes that are answers, not failures (e.g. `systemctl is-active` returns 3). */
  readonly okExitCodes?: readonly number[];
  /** Called with each line of stdout and stderr as it arrives (package-manager progress). */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface FileStat {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number; // permission bits only (0o7777)
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface WriteOptions {
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface HostFs {
  /** undefined when the path does not exist. Paths are node paths; the host resolves them under root. */
  read(path: string): Promise<Buffer | undefined>;
  /** lstat: a symlink is reported as a symlink. */
  stat(path: string): Promise<FileStat | undefined>;
  readlink(path: string): Promise<string | undefined>;
  list(dir: string): Promise<readonly string[]>;
  /** Temp file in the same directory, fsync, chmod/chown, rename: readers see the old or the new file. */
  writeAtomic(path: string, data: string | Buffer, opts: WriteOptions): Promise<void>;
  /** Copies a host file (for example a cached download) into place atomically. */
  installFile(sourceHostPath: string, path: string, opts: WriteOptions): Promise<void>;
  mkdirp(path: string, mode: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** The real path on this machine of a node path (under --root). */
  hostPath(path: string): string;
}

export interface HttpRequest {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** A downloadable file: tried URL by URL until one yields the right bytes. */
export interface AssetSource {
  readonly name: string;
  readonly urls: readonly string[];
  readonly sha256: string;
}

export interface DownloadProgress {
  readonly name: string;
  readonly url: string;
  readonly received: number;
  readonly total: number | undefined;
}

export interface Host extends ArchiveExtractor {
  /** "/" in production; an image mount (bake) or a temp dir (tests) otherwise. */
  readonly root: string;
  readonly fs: HostFs;
  run(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs a command inside the root: as is when root is "/", through chroot otherwise. */
  runInRoot(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  http(req: HttpRequest): Promise<HttpResponse>;
  /**
   * Makes sure the asset is in the content-addressed cache (`/var/cache/nodeup/sha256/<hash>` under
   * root), downloading and verifying it if needed. Returns the host path of the cached file.
   */
  fetchAsset(asset: AssetSource): Promise<string>;
  /** The host path of a cached asset, or undefined when it is not cached (or its bytes are wrong). */
  cachedAsset(sha256: string): Promise<string | undefined>;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export const assetCacheDir = '/var/cache/nodeup/sha256';

/** Extraction of selected archive members (tar, tar.gz, tar.zst by content), modes kept. */
export interface ArchiveExtractor {
  /**
   * Extracts exactly the listed members of a cached archive into a fresh temp dir on the host and
   * returns the host path of each; a listed member missing from the archive is an error.
   */
  extractMembers(archiveHostPath: string, members: readonly string[]): Promise<ReadonlyMap<string, string>>;
  /** Removes what extractMembers made. */
  cleanupExtract(paths: ReadonlyMap<string, string>): Promise<void>;
  /** SHA-256 of a node path's bytes (streamed). */
  hashFile(path: string): Promise<string | undefined>;
}
