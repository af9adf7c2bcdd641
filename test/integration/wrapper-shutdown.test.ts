// How the wrapper ends: every answer in flight leaves whole, on the watchdog's
// timeline or alone; durations too long for a timer stay long; a visitor waiting
// on the function's work gets its answer; every signal that ends the process
// takes the health lock file with it; and a broken stderr costs only lines.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENDING_SIGNALS } from '../../template/node22-ts/lifecycle.ts';
import { bigPictureSource } from '../support/big-picture.ts';
import { eventually, startFunction, watch } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { readAt, type Reading } from '../support/readers.ts';
import { startSource } from '../support/source.ts';
import { startWatchdog } from '../support/watchdog.ts';
import { wrapperWith, type WrapperRoot } from '../support/wrapper-root.ts';

/** The page: 8.63 MB, read by a client at 1 MB/s. */
const PAGE_BYTES = 8_630_000;
const READ_RATE = 1_000_000;

// Side by side with the stand-in watchdog; one after the other with the real one (its metrics port is fixed).
describe('SIGTERM while answers are still leaving', { concurrency: !process.env.OF_WATCHDOG_BIN, timeout: 180_000 }, () => {
  let root: WrapperRoot;
  before(() => {
    root = wrapperWith();
  });
  after(() => root.remove());

  it('without a watchdog: a client reading an 8.6 MB answer at 1 MB/s gets every byte, and the process exits 0 once they have left it', async () => {
    const fn = await startFunction({}, { entry: root.entry });
    const reader = readAt(fn.port, `/big/${PAGE_BYTES}`, READ_RATE);
    try {
      await eventually(() => reader.received() > 0, 5000, 'the answer started');
      fn.child.kill('SIGTERM');
      assert.deepEqual(await fn.exited, { code: 0, signal: null }, fn.output());
      await reader.ended;
      assert.equal(reader.length(), PAGE_BYTES);
      assert.equal(reader.received(), PAGE_BYTES, 'every byte arrived');
    } finally {
      reader.destroy();
      await fn.kill();
    }
  });

  it('behind the watchdog: a 24 MB answer, more than the kernel holds on both hops, reaches a client reading 3 MB/s whole, and both exit 0', async () => {
    const w = await startWatchdog({ fprocess: `node ${root.entry}`, healthcheck_interval: '1', suppress_lock: 'true' });
    await eventually(async () => (await fetch(`${w.url}/_/health`)).status === 200, 10_000, 'ready');
    // Loopback takes up to 4 MiB in a socket's send buffer and 32 MiB in a receive buffer
    // (tcp_wmem, tcp_rmem): the function's own share must outlast the buffers of both hops.
    const size = 24_000_000;
    const reader = readAt(w.port, `/big/${size}`, 3 * READ_RATE);
    try {
      await eventually(() => reader.received() > 0, 10_000, 'the answer started');
      w.child.kill('SIGTERM');
      await reader.ended;
      assert.equal(reader.received(), size, `every byte arrived\n${w.output()}`);
      assert.deepEqual(await w.exited, { code: 0, signal: null });
    } finally {
      reader.destroy();
      await w.destroy();
    }
  });

  it('todo-app with an 8.6 MB page, alone and behind the watchdog with the image environment: the page leaves whole after SIGTERM', async () => {
    const source = await bigPictureSource();
    const dirs = [fs.mkdtempSync(path.join(os.tmpdir(), 'todo-big-')), fs.mkdtempSync(path.join(os.tmpdir(), 'todo-big-'))];
    const alone = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dirs[0]!, LOG_LEVEL: 'info' });
    const behind = await startWatchdog({ IMAGE_URL: source.url, IMAGE_DIR: dirs[1]!, healthcheck_interval: '1' });
    const readers: Reading[] = [];
    try {
      await eventually(async () => (await fetch(`${behind.url}/_/health`).catch(() => undefined))?.status === 200, 15_000, 'ready behind the watchdog');
      for (const url of [alone.url, behind.url]) {
        const warm = await fetch(`${url}/`);
        assert.equal(warm.status, 200);
        const length = Number(warm.headers.get('content-length'));
        assert.ok(length > 8_000_000, `an 8.6 MB page, got ${length} bytes`);
        await warm.arrayBuffer();
      }
      readers.push(readAt(alone.port, '/', READ_RATE), readAt(behind.port, '/', READ_RATE));
      await eventually(() => readers.every((r) => r.received() > 0), 5000, 'both answers started');
      alone.child.kill('SIGTERM');
      behind.child.kill('SIGTERM');
      await Promise.all(readers.map((r) => r.ended));
      for (const [i, reader] of readers.entries()) assert.equal(reader.received(), reader.length(), `${['alone', 'behind the watchdog'][i]}: every byte arrived`);
      assert.deepEqual(await alone.exited, { code: 0, signal: null });
      assert.deepEqual(await behind.exited, { code: 0, signal: null });
      for (const p of [alone, behind]) assert.match(p.output(), /"msg":"stopped"/);
    } finally {
      for (const reader of readers) reader.destroy();
      await alone.kill();
      await behind.destroy();
      await source.close();
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('write_timeout and healthcheck_interval of 720h are far away, not 1 ms: answers go on after SIGTERM, with no TimeoutOverflowWarning', async (t) => {
    // The wrapper as of-watchdog starts it, without the watchdog in front: its own timeline is what is seen.
    const port = await freePort();
    const upstream = { upstream_url: `http://127.0.0.1:${port}` };
    const longDrain = await startFunction({ ...upstream, healthcheck_interval: '1s', write_timeout: '720h' }, { entry: root.entry, waitReady: false });
    t.after(() => longDrain.kill());
    await waitForPort(port, 10_000);
    const slow = fetch(`http://127.0.0.1:${port}/slow/3000`).then(async (r) => [r.status, await r.text()]);
    await new Promise((r) => setTimeout(r, 300));
    longDrain.child.kill('SIGTERM');
    // It stops listening 2 s after the signal; the answer in flight comes at 3 s.
    assert.deepEqual(await slow, [200, 'slow\n'], 'the answer in flight when it stopped listening was sent');
    assert.deepEqual(await longDrain.exited, { code: 0, signal: null });
    assert.doesNotMatch(longDrain.output(), /TimeoutOverflowWarning/);

    const port2 = await freePort();
    const longAccept = await startFunction({ upstream_url: `http://127.0.0.1:${port2}`, healthcheck_interval: '720h' }, { entry: root.entry, waitReady: false });
    try {
      await waitForPort(port2, 10_000);
      longAccept.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1500));
      const later = await fetch(`http://127.0.0.1:${port2}/big/10`);
      assert.equal(later.status, 200, 'still listening: the watchdog still forwards');
      assert.doesNotMatch(longAccept.output(), /TimeoutOverflowWarning/);
    } finally {
      await longAccept.kill();
    }
  });

  it('todo-app alone: a visitor waiting on the first download at SIGTERM gets the 503 page, the function logs "stopped", the process exits 0', async () => {
    const source = await startSource();
    source.mode = 'hang';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-first-'));
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, FETCH_TIMEOUT_MS: '60000', LOG_LEVEL: 'info' });
    try {
      const visitor = fetch(`${fn.url}/`).then(async (r) => ({ status: r.status, body: await r.text() }));
      await eventually(() => source.downloads > 0, 10_000, 'the download started');
      fn.child.kill('SIGTERM');
      const answer = await visitor;
      assert.equal(answer.status, 503);
      assert.match(answer.body, /could not be fetched/);
      assert.deepEqual(await fn.exited, { code: 0, signal: null });
      assert.match(fn.output(), /"msg":"stopped"/);
    } finally {
      await fn.kill();
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every signal that ends the process', { timeout: 60_000 }, () => {
  it('removes of-watchdog\'s lock file and still ends the process by that signal', async () => {
    const root = wrapperWith();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-signals-'));
    try {
      const results = await Promise.all(
        ENDING_SIGNALS.map(async (signal) => {
          const dir = fs.mkdtempSync(path.join(tmp, `${signal}-`));
          const lock = path.join(dir, '.lock');
          const port = await freePort();
          // No core file from the signals whose default action dumps one (SIGQUIT, SIGABRT...).
          const child = spawn('sh', ['-c', 'ulimit -c 0 && exec "$0" "$@"', process.execPath, root.entry], {
            env: { PATH: process.env.PATH ?? '', upstream_url: `http://127.0.0.1:${port}`, suppress_lock: 'true', TMPDIR: dir },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          const running = watch(child);
          await eventually(() => fs.existsSync(lock), 15_000, `${signal}: the lock file is written once it listens`);
          child.kill(signal);
          const exit = await running.exited;
          return { signal, exit, lockLeft: fs.existsSync(lock), output: running.output() };
        }),
      );
      for (const { signal, exit, lockLeft, output } of results) {
        assert.deepEqual(exit, { code: null, signal }, `${signal} ends the process as the signal does\n${output}`);
        assert.equal(lockLeft, false, `${signal} left the lock file`);
      }
    } finally {
      root.remove();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("the wrapper's stderr lines", { timeout: 60_000 }, () => {
  it('cost only lines when stderr is a closed pipe (EPIPE) or a full one that never blocks (EAGAIN): the function goes on answering', async (t) => {
    const root = wrapperWith();
    const fifo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'todo-fifo-')), 'stderr');
    try {
      // EPIPE: the reading end is gone before the first line.
      const port = await freePort();
      const closed = spawn(process.execPath, [root.entry], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
      closed.stderr!.destroy();
      const closedRun = watch(closed);
      t.after(() => closedRun.kill());
      await waitForPort(port, 10_000, closedRun.alive);
      // EAGAIN: a FIFO opened non-blocking, that nobody reads, filled by the failures' lines.
      execFileSync('mkfifo', [fifo]);
      const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      const port2 = await freePort();
      const full = spawn(process.execPath, [root.entry], { env: { PATH: process.env.PATH ?? '', PORT: String(port2) }, stdio: ['ignore', 'ignore', fd] });
      fs.closeSync(fd);
      const fullRun = watch(full);
      t.after(() => fullRun.kill());
      await waitForPort(port2, 10_000, fullRun.alive);
      for (const p of [port, port2]) {
        // Each failure writes a line of about 100 bytes; a pipe holds 64 KiB.
        for (let batch = 0; batch < 20; batch++) {
          const codes = await Promise.all(Array.from({ length: 50 }, () => fetch(`http://127.0.0.1:${p}/fail`).then((r) => r.status)));
          assert.ok(codes.every((c) => c === 500));
        }
        assert.equal((await fetch(`http://127.0.0.1:${p}/json`)).status, 201, 'still answering');
      }
      assert.ok(closedRun.alive() && fullRun.alive());
    } finally {
      root.remove();
      fs.rmSync(path.dirname(fifo), { recursive: true, force: true });
    }
  });
});
