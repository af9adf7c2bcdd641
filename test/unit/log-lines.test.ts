// stdout's lines through a pipe that takes only part of a long line: the reader
// must never see two lines run into one, whatever the pipe took.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stdoutLines } from '../../functions/todo-app/log.ts';

/** A named pipe: a reader that reads only when told, and a writing end that never blocks. */
function pipe(): { reader: number; writer: number; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-log-lines-'));
  const file = path.join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [file]).status, 0);
  const reader = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return { reader, writer, dir };
}

function drain(fd: number): string {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(1 << 16);
  for (;;) {
    let n = 0;
    try {
      n = fs.readSync(fd, buffer);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw error;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

describe("stdout's log lines", () => {
  it('a line longer than the pipe holds reaches the reader whole, and no other line is cut into it', () => {
    const { reader, writer, dir } = pipe();
    try {
      const out = stdoutLines(writer);
      // A pipe holds 64 KiB by default: each of these lines is more than it can take at once.
      const tags = 'abcdefghijklmnopqrstuvwxyz'.split('');
      let seen = '';
      for (const tag of tags) {
        out.write(`${JSON.stringify({ tag, pad: tag.repeat(100_000) })}\n`);
        seen += drain(reader);
      }
      // Short lines until the last long one's end has gone out.
      for (let i = 0; i < 5; i++) {
        out.write(`${JSON.stringify({ tag: `short${i}` })}\n`);
        seen += drain(reader);
      }
      assert.ok(seen.endsWith('\n'), 'the reader ends on a whole line');
      const got = seen.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { tag: string }).tag);
      const long = got.filter((tag) => tag.length === 1);
      assert.deepEqual(long, [...long].sort(), 'in order');
      assert.ok(long.length >= tags.length / 3, `most long lines arrive whole: ${long.join('')}`);
      assert.ok(long.length < tags.length, 'some were dropped while an end waited: the test did cut lines');
      assert.ok(got.includes('short4'), 'the last short line arrived');
    } finally {
      fs.closeSync(reader);
      fs.closeSync(writer);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
