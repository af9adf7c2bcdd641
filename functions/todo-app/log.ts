// pino: JSON lines on stdout, and the same lines in LOG_FILE when it is set (the
// seed app kept /app/logs/todo-app.log). The function logs on events (start-up,
// refreshes, failures) and, at debug, per request.
//
// Logging can never stop or slow the function. stdout is written line by line,
// at once, through a descriptor of its own that never blocks (a non-blocking
// reopen of fd 1, stdoutLines below): a line the reader cannot take now (a pipe
// nobody reads: EAGAIN; a reader gone: EPIPE; a full disk: ENOSPC) is dropped and
// counted, and said on stderr at most once a minute. Nothing waits in memory, so
// no line already written is lost when the process is killed or crashes; the
// lines lost are those a stuck reader could not take. A LOG_FILE that could block
// it is refused at start, and a log disk that fails later costs only the file's lines.
//
// pino itself is loaded with the first line written, not at start: requiring it
// costs 10-16 ms on Node 22 (it loads its transport, thread-stream and
// worker_threads whatever the options), a third of a cold start's budget. The
// handler writes its start line once the requests of a cold start are answered.
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger as PinoLogger } from 'pino';
import { ConfigError } from './config.js';
import { NotRegularFileError, openRegularForAppend } from './regularFile.js';

type LogFn = (fieldsOrMessage: object | string, message?: string) => void;

/** The levels the function writes at; a line below LOG_LEVEL costs a comparison, nothing more. */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  isLevelEnabled(level: string): boolean;
}

/** pino's numbers for its levels (pino.levels.values), so a level is compared without loading pino. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Lines kept in memory while LOG_FILE cannot be written; beyond this they are dropped, and counted. */
const LOG_FILE_BACKLOG_BYTES = 1024 * 1024;

/**
 * Makes the missing folders of `dir` one level at a time, not with mkdir's recursive mode:
 * Node's recursive mkdir retries for ever where mkdir answers ENOENT under a folder that
 * exists (/proc), spinning at full CPU before the function ever listens.
 */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  let at = dir;
  for (; !fs.existsSync(at) && path.dirname(at) !== at; at = path.dirname(at)) missing.unshift(at);
  if (!fs.statSync(at).isDirectory()) throw Object.assign(new Error(`${at} is not a folder`), { code: 'ENOTDIR' });
  for (const folder of missing) {
    try {
      fs.mkdirSync(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(folder).isDirectory()) throw error;
    }
  }
}

function openLogFile(file: string): number {
  const code = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? String(error);
  try {
    makeFolders(path.dirname(path.resolve(file)));
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

/** A failure of stdout is said on stderr at most this often, with the lines dropped since the last time. */
const STDOUT_REPORT_EVERY_MS = 60_000;

/**
 * A descriptor for `fd` (stdout, stderr) whose writes never block: /proc/self/fd/N opened
 * anew is a file description of our own on the same pipe, terminal or file, so O_NONBLOCK
 * there leaves the descriptor our parent (of-watchdog, a shell) shares with us as it is.
 * Where it cannot be reopened (a socket, no /proc), fd itself.
 */
function nonBlocking(fd: number): number {
  try {
    return fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NONBLOCK);
  } catch {
    return fd;
  }
}

let stderrFd: number | undefined;

/** One JSON line on stderr, where the function reports what its log cannot say; never blocks, never throws. */
function sayOnStderr(fields: object): void {
  stderrFd ??= nonBlocking(2);
  try {
    fs.writeSync(stderrFd, `${JSON.stringify({ level: 40, time: Date.now(), fn: 'todo-app', ...fields })}\n`);
  } catch {
    // stderr is stuck too: nothing is left to tell
  }
}

/**
 * stdout for pino: each line written at once with one write(2) on a descriptor that never
 * blocks. Rather than sonic-boom, which retries EAGAIN for ever (sync: the event loop stops;
 * async: an unbounded or dropping buffer, and an exit that waits on flushSync), a line that
 * cannot go now is dropped and counted. A pipe takes a line of up to PIPE_BUF (4 KiB) whole
 * or not at all; a longer one it may take in part: its end is kept (one line at most, never
 * more) and written before anything else, and lines that come while it cannot go are
 * dropped, so the reader never sees two lines run into one.
 */
export function stdoutLines(fd = nonBlocking(1)): { write(line: string): boolean } {
  let dropped = 0;
  let reportedAt = -Infinity;
  let rest: Buffer | undefined;
  /** Writes what it can of `bytes`; returns the end the descriptor did not take, if any. */
  const send = (bytes: Buffer): Buffer | undefined => {
    const written = fs.writeSync(fd, bytes);
    return written < bytes.length ? bytes.subarray(written) : undefined;
  };
  return {
    write(line: string): boolean {
      try {
        if (rest !== undefined) rest = send(rest);
        if (rest !== undefined) throw Object.assign(new Error('the end of a long line is still waiting'), { code: 'EAGAIN' });
        rest = send(Buffer.from(line));
      } catch (error) {
        dropped++;
        const now = Date.now();
        if (now - reportedAt >= STDOUT_REPORT_EVERY_MS) {
          reportedAt = now;
          const code = (error as NodeJS.ErrnoException).code;
          sayOnStderr({ code, dropped, msg: 'stdout cannot take log lines; dropping them, the function goes on (said at most once a minute)' });
        }
      }
      return true;
    },
  };
}

/**
 * A failed write to the file (ENOSPC, EIO, EPIPE) is said once on stderr, and
 * the line stays queued: sonic-boom retries the queue with the next line, so
 * the file catches up by itself once the disk has room again.
 */
function reportFailures(destination: EventEmitter, file: string): void {
  let failing = false;
  let dropped = 0;
  const say = (fields: object): void => sayOnStderr({ file, ...fields });
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

/** The pino logger itself, made when the first line is written: the one place pino is called. */
function build(level: string, fd: number | undefined, file: string | undefined): PinoLogger {
  // A require() here, not an import at the top: this is what keeps pino off the start.
  const pino = require('pino') as typeof import('pino');
  const options = { level, base: { fn: 'todo-app' } };
  const stdout = stdoutLines();
  if (fd === undefined || file === undefined) return pino(options, stdout);
  const toFile = pino.destination({ dest: fd, sync: true, maxLength: LOG_FILE_BACKLOG_BYTES });
  reportFailures(toFile, file);
  return pino(options, pino.multistream([
    { level: 'trace', stream: stdout },
    { level: 'trace', stream: toFile },
  ]));
}

/**
 * The logger. LOG_FILE is opened now: a bad one stops the start, whenever pino loads.
 * `first` runs once, before the first line is written, so a line that is due early
 * (a refresh on the first request) comes after the start line, not before it.
 */
export function createLog(level: string, file: string | undefined, first?: () => void): Logger {
  const fd = file === undefined ? undefined : openLogFile(file);
  const threshold = LEVELS[level] ?? LEVELS.info!;
  let real: PinoLogger | undefined;
  let before = first;
  const at =
    (name: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'): LogFn =>
    (fieldsOrMessage, message) => {
      if (LEVELS[name]! < threshold) return;
      if (real === undefined) {
        real = build(level, fd, file);
        const once = before;
        before = undefined;
        once?.();
      }
      if (typeof fieldsOrMessage === 'string') real[name](fieldsOrMessage);
      else real[name](fieldsOrMessage, message);
    };
  return {
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    isLevelEnabled: (name) => (LEVELS[name] ?? Infinity) >= threshold,
  };
}
