// pino: JSON lines on stdout, and the same lines in LOG_FILE when it is set (the
// seed app kept /app/logs/todo-app.log). The function logs on events (start-up,
// refreshes, failures), never per request, so synchronous writes cost nothing
// users feel and no line is lost when the process is killed or crashes.
// Logging can never stop the function: a LOG_FILE that could block it is
// refused at start, and a log disk that fails later costs only the file's lines.
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { ConfigError } from './config.js';
import { NotRegularFileError, openRegularForAppend } from './regularFile.js';

export type { Logger };

/** Lines kept in memory while LOG_FILE cannot be written; beyond this they are dropped, and counted. */
const LOG_FILE_BACKLOG_BYTES = 1024 * 1024;

function openLogFile(file: string): number {
  const code = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? String(error);
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  } catch (error) {
    // mkdir says EEXIST when the folder's own name is taken by a file, ENOTDIR when a name above it is.
    const why = ['ENOTDIR', 'EEXIST'].includes(code(error)) ? 'a part of its folder path is a file, not a folder' : 'its folder cannot be created';
    throw new ConfigError('LOG_FILE', `${why} (${code(error)})`, file);
  }
  try {
    return openRegularForAppend(file);
  } catch (error) {
    if (error instanceof NotRegularFileError) throw new ConfigError('LOG_FILE', `must be a regular file, not ${error.kind}`, file);
    throw new ConfigError('LOG_FILE', `cannot be opened for append (${code(error)})`, file);
  }
}

/**
 * A failed write to the file (ENOSPC, EIO, EPIPE) is said once on stderr, and
 * the line stays queued: sonic-boom retries the queue with the next line, so
 * the file catches up by itself once the disk has room again.
 */
function reportFailures(destination: EventEmitter, file: string): void {
  let failing = false;
  let dropped = 0;
  const say = (fields: object): void => void process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), fn: 'todo-app', file, ...fields })}\n`);
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (!failing) say({ code: error.code, msg: 'LOG_FILE cannot be written; logging on stdout only, retrying the file with each new line' });
    failing = true;
  });
  destination.on('drop', () => dropped++);
  destination.on('write', () => {
    if (failing) say({ dropped, msg: 'LOG_FILE written again' });
    failing = false;
    dropped = 0;
  });
}

/** The one place pino is called, so that loading it lazily stays one edit. */
export function createLog(level: string, file: string | undefined): Logger {
  const options = { level, base: { fn: 'todo-app' } };
  const stdout = pino.destination({ dest: 1, sync: true });
  if (file === undefined) return pino(options, stdout);
  const toFile = pino.destination({ dest: openLogFile(file), sync: true, maxLength: LOG_FILE_BACKLOG_BYTES });
  reportFailures(toFile, file);
  return pino(options, pino.multistream([
    { level: 'trace', stream: stdout },
    { level: 'trace', stream: toFile },
  ]));
}
