// pino JSON lines on stderr; no transports (they need worker threads loaded by path, which breaks
// in a bundled single binary). `--log-format pretty` uses a small in-process formatter instead.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

/** Field names whose values never reach a log line, at any depth we know of. */
export const redactPaths = [
  'token',
  'password',
  'privateKey',
  'secretAccessKey',
  'sessionToken',
  '*.token',
  '*.password',
  '*.privateKey',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.bootstrapToken',
  'headers.authorization',
  '*.headers.authorization',
];

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const skipKeys = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** Renders one pino JSON line for people: `12:00:01 INFO  message key=value ...`. Pure. */
export function formatPretty(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 19) : '';
  const level = (levelNames[Number(rec.level)] ?? String(rec.level)).padEnd(5);
  const fields: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (skipKeys.has(k)) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: string; code?: string };
      fields.push(`err=${JSON.stringify(e.code ? `${e.code}: ${e.message ?? ''}` : (e.message ?? ''))}`);
      continue;
    }
    fields.push(`${k}=${typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  }
  return `${time} ${level} ${typeof rec.msg === 'string' ? rec.msg : ''}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}

function prettyStream(fd: number): DestinationStream {
  const dest = pino.destination({ dest: fd, sync: true });
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line) dest.write(formatPretty(line));
    },
  };
}

export interface LoggerOptions {
  readonly format?: LogFormat;
  readonly level?: string;
  readonly stream?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const stream = opts.stream ?? (format === 'pretty' ? prettyStream(2) : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: opts.level ?? process.env.NODEUP_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      redact: { paths: redactPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    stream,
  );
}

/** A logger that drops everything, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
