// The wrapper's own lines on stderr. The wrapper has no logger: its few lines are JSON in the
// shape the function's pino lines have, written to fd 2 so that nothing about that descriptor
// can cost more than the lines themselves. A closed pipe (EPIPE), a full non-blocking one
// (EAGAIN), a full disk (ENOSPC) lose lines; they never throw, never block the event loop
// (fs.write runs on the thread pool, one write at a time: a blocking pipe nobody reads holds
// one of its four threads) and never queue without bound. process.stderr is left alone: on a
// pipe, creating it makes the descriptor non-blocking (libuv's uv_pipe_open), under the
// function's own writes to it.
import fs from 'node:fs';

/** Lines waiting while a write is under way; beyond this they are counted and dropped. */
const QUEUE_LINES = 64;

const queue: string[] = [];
let writing = false;
let lost = 0;

function flush(): void {
  if (writing || queue.length === 0) return;
  if (lost > 0) {
    queue.push(`${JSON.stringify({ level: 40, time: Date.now(), msg: 'wrapper lines lost', lost })}\n`);
    lost = 0;
  }
  const text = queue.splice(0).join('');
  writing = true;
  fs.write(2, text, (error) => {
    writing = false;
    // The lines are gone; the next ones say how many.
    if (error) lost += text.split('\n').length - 1;
    flush();
  });
}

function line(level: number, msg: string, fields: Record<string, unknown>): void {
  if (queue.length >= QUEUE_LINES) {
    lost++;
    return;
  }
  queue.push(`${JSON.stringify({ level, time: Date.now(), msg, ...fields })}\n`);
  flush();
}

/** An error of the function's, in the JSON line shape its logs use. */
export function reportError(msg: string, error: unknown): void {
  line(50, msg, { err: String(error) });
}

export function reportWarning(msg: string, fields: Record<string, unknown>): void {
  line(40, msg, fields);
}

/** A start that cannot go on: one line, then exit code 1. */
export function fatal(message: string): never {
  try {
    fs.writeSync(2, `${message}\n`);
  } catch {
    // Nowhere to say it: the exit code still does.
  }
  process.exit(1);
}
