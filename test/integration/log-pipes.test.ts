// stdout can fail in three ways a platform really produces: a full disk under a
// redirect (ENOSPC, made here with /dev/full), a reader that stopped reading (a
// pipe that fills: EAGAIN for ever) and a reader that went away (EPIPE). Each
// costs log lines only: the function starts, serves, keeps its health check,
// and says once on stderr what its log cannot.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage } from '../support/page.ts';
import { startSource, type ImageSource } from '../support/source.ts';

/** The stderr lines that report stdout's failure. */
const reports = (fn: FunctionProcess): Array<Record<string, unknown>> => fn.logs().filter((line) => String(line.msg).startsWith('stdout cannot take log lines'));

/** A named pipe with its reading end open (and never read) and its writing end for the function's stdout. */
function fifo(dir: string): { reader: number; writer: number } {
  const file = path.join(dir, `stdout-${Math.random().toString(16).slice(2)}`);
  const made = spawnSync('mkfifo', [file], { encoding: 'utf8' });
  assert.equal(made.status, 0, `mkfifo: ${made.stderr}`);
  const reader = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return { reader, writer: fs.openSync(file, fs.constants.O_WRONLY) };
}

/** `count` GETs one after the other on one kept-alive connection; each must answer within `eachMs`. */
async function requests(url: string, count: number, eachMs: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const statuses: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          const req = http.get(url, { agent, timeout: eachMs }, (res) => {
            res.resume().on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('timeout', () => req.destroy(new Error(`request ${i + 1} got no answer within ${eachMs} ms`)));
          req.on('error', reject);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  return statuses;
}

describe('stdout can fail; the function goes on', () => {
  let source: ImageSource;
  let root: string;
  const env = (name: string, extra: Record<string, string> = {}): Record<string, string> => ({
    IMAGE_URL: source.url,
    IMAGE_DIR: path.join(root, name),
    LOG_LEVEL: 'debug',
    ...extra,
  });

  before(async () => {
    source = await startSource();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-log-'));
  });
  after(async () => {
    await source.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('with stdout on a full disk (/dev/full): starts, serves the page, and says so once on stderr', async () => {
    const full = fs.openSync('/dev/full', 'w');
    const fn = await startFunction(env('full'), { stdout: full });
    fs.closeSync(full);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await getPage(`${fn.url}/`)).status, 200);
      await eventually(() => reports(fn).length > 0, 5_000, 'the stderr line about stdout');
      assert.equal(reports(fn).length, 1, fn.output());
      assert.equal(reports(fn)[0]!.code, 'ENOSPC');
      assert.ok((await getPage(`${fn.url}/_/health`)).status === 200);
    } finally {
      await fn.kill();
    }
  });

  it('with stdout into a pipe nobody reads, at LOG_LEVEL=debug: 1500 requests and the health check keep answering', async () => {
    const pipe = fifo(root);
    const fn = await startFunction(env('stuck'), { stdout: pipe.writer });
    fs.closeSync(pipe.writer);
    try {
      // A pipe holds 64 KiB; a debug line per request fills it after a few hundred.
      const statuses = await requests(`${fn.url}/`, 1500, 5_000);
      assert.ok(statuses.every((s) => s === 200));
      assert.deepEqual(await requests(`${fn.url}/_/health`, 3, 5_000), [200, 200, 200]);
      await eventually(() => reports(fn).length > 0, 5_000, 'the stderr line about stdout');
      assert.equal(reports(fn).length, 1);
      assert.equal(reports(fn)[0]!.code, 'EAGAIN');
    } finally {
      await fn.kill();
      fs.closeSync(pipe.reader);
    }
  });

  it('with stdout into a pipe whose reader went away (EPIPE): it goes on serving', async () => {
    const pipe = fifo(root);
    const fn = await startFunction(env('gone'), { stdout: pipe.writer });
    fs.closeSync(pipe.writer);
    try {
      assert.equal((await getPage(`${fn.url}/`)).status, 200);
      fs.closeSync(pipe.reader);
      const statuses = await requests(`${fn.url}/`, 200, 5_000);
      assert.ok(statuses.every((s) => s === 200));
      await eventually(() => reports(fn).length > 0, 5_000, 'the stderr line about stdout');
      assert.equal(reports(fn)[0]!.code, 'EPIPE');
      assert.equal(fn.child.exitCode, null, "still running");
    } finally {
      await fn.kill();
    }
  });
});
