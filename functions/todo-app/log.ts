// pino: JSON lines on stdout, and the same lines in LOG_FILE when it is set (the
// seed app kept /app/logs/todo-app.log). The function logs on events (start-up,
// refreshes, failures), never per request, so synchronous writes cost nothing
// users feel and no line is lost when the process is killed or crashes.
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { ConfigError } from './config.js';

export type { Logger };

export function createLog(level: string, file: string | undefined): Logger {
  const options = { level, base: { fn: 'todo-app' } };
  const stdout = pino.destination({ dest: 1, sync: true });
  if (file === undefined) return pino(options, stdout);
  let fd: number;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fd = fs.openSync(file, 'a');
  } catch (error) {
    throw new ConfigError('LOG_FILE', `cannot be opened for append (${(error as NodeJS.ErrnoException).code ?? String(error)})`, file);
  }
  const streams = pino.multistream([
    { level: 'trace', stream: stdout },
    { level: 'trace', stream: pino.destination({ dest: fd, sync: true }) },
  ]);
  return pino(options, streams);
}
