// One error type for the whole agent: a closed set of codes, the cause kept, context in fields.
// Only main.ts turns errors into exit codes.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_HASH_MISMATCH'
  | 'DISTRO_UNSUPPORTED'
  | 'PREFLIGHT_FAILED'
  | 'STATE_STORE'
  | 'COMMAND_FAILED'
  | 'DOWNLOAD_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'TASK_FAILED'
  | 'NOT_READY'
  | 'LOCKED'
  | 'PKI'
  | 'ETCD_MEMBERSHIP'
  | 'ETCD_QUORUM'
  | 'ORCHESTRATOR'
  | 'SSH'
  | 'USAGE'
  | 'KUBE_API'
  | 'DRAIN';

export class AgentError extends Error {
  override name = 'AgentError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { cause?: unknown; details?: Record<string, unknown> | undefined } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.details = opts.details ?? {};
  }
}

/** A condition that is expected to clear by itself (a lock held, a peer not up yet): retried with backoff. */
export class NotReadyError extends AgentError {
  override name = 'NotReadyError';
  constructor(message: string, details?: Record<string, unknown>) {
    super('NOT_READY', message, { details });
  }
}

/** Programmer errors in the task graph: they fail a test, never a node at run time. */
export class GraphError extends Error {
  override name = 'GraphError';
}

/** `apply --rollback-on-failure`: the config failed and the node converged back to its last good one (nodeup.service does not restart on it). */
export const rolledBackExitCode = 3;

/** Exit codes, as documented in the README: 0 converged, 1 a task failed, 2 bad config or host. */
export function exitCodeFor(err: unknown): 1 | 2 {
  if (err instanceof AgentError) {
    switch (err.code) {
      case 'CONFIG_INVALID':
      case 'CONFIG_HASH_MISMATCH':
      case 'DISTRO_UNSUPPORTED':
      case 'PREFLIGHT_FAILED':
      case 'USAGE':
        return 2;
      default:
        return 1;
    }
  }
  return 1;
}

/**
 * What a log line carries for an error: a user's mistake (exit code 2: bad config, usage, host) as
 * its code, message and details, without a stack trace; anything else whole, stack included.
 */
export function errorForLog(err: unknown): unknown {
  return exitCodeFor(err) === 2 ? summarizeError(err) : err;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A plain, serialisable summary of an error chain for receipts and reports. */
export interface ErrorSummary {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: ErrorSummary;
}

export function summarizeError(err: unknown, depth = 0): ErrorSummary {
  if (err instanceof AgentError) {
    const cause = err.cause !== undefined && depth < 4 ? summarizeError(err.cause, depth + 1) : undefined;
    return {
      code: err.code,
      message: err.message,
      ...(Object.keys(err.details).length > 0 ? { details: err.details } : {}),
      ...(cause ? { cause } : {}),
    };
  }
  if (err instanceof Error) return { code: err.name, message: err.message };
  return { code: 'UNKNOWN', message: String(err) };
}
