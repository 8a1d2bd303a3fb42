// A mirror in an S3 bucket: the staged directory's files uploaded under s3://<bucket>/<prefix>/,
// in the same layout (nodes read it over HTTPS: the bucket's endpoint URL is the mirror URL).
// Each file goes up with its SHA-256 as the request checksum, so the server refuses bytes that are
// not the verified ones, and as metadata, so a later run skips what is already there (HeadObject)
// and re-uploads an object someone replaced. The manifest goes last: a bucket with a manifest
// holds every file it lists.
import * as path from 'node:path';
import { errorMessage } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import type { S3Store } from '../statestore/s3-store.ts';
import type { StagedFile } from './stage.ts';

export interface UploadedFile {
  readonly path: string;
  readonly bytes: number;
  /** uploaded, present (the bucket has these bytes already), failed (see error). */
  readonly status: 'uploaded' | 'present' | 'failed';
  readonly error?: string;
}

/** Uploads the staged files (not the failed ones) of `dir` to `store`, a few at once. Never throws for one file. */
export async function uploadMirror(dir: string, files: readonly StagedFile[], store: S3Store, log: Logger, concurrency = 4): Promise<UploadedFile[]> {
  const todo = files.filter((f) => f.status !== 'failed');
  const out: UploadedFile[] = new Array<UploadedFile>(todo.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < todo.length; i = next++) {
      const f = todo[i] as StagedFile;
      try {
        if ((await store.fileDigest(f.path)) === f.sha256) out[i] = { path: f.path, bytes: f.bytes, status: 'present' };
        else {
          await store.putFile(f.path, path.join(dir, f.path), f.sha256);
          out[i] = { path: f.path, bytes: f.bytes, status: 'uploaded' };
        }
      } catch (err: unknown) {
        out[i] = { path: f.path, bytes: f.bytes, status: 'failed', error: errorMessage(err) };
      }
      done++;
      log.info({ file: f.path, status: out[i]?.status, done, of: todo.length }, 'mirror upload');
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return out;
}
