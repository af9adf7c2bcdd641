// The node22-ts template's wrapper as the platforms start it: under of-watchdog
// (upstream_url and healthcheck_interval in its environment), under Knative
// (PORT set to the watchdog's own port), and alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import net from 'node:net';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { connect } from '../support/http1.ts';
import { startWatchdog, type Watchdog } from '../support/watchdog.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';
import { wrapperWith, type WrapperRoot } from '../support/wrapper-root.ts';

describe('the template wrapper', { timeout: 60_000 }, () => {
  let source: ImageSource;
  let dir: string;
  const started: FunctionProcess[] = [];
  beforeEach(async () => {
    source = await startSource();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-wrapper-'));
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((fn) => fn.kill()));
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("listens on of-watchdog's upstream_url port even when Knative sets PORT to the watchdog's 8080", async () => {
    const watchdogPort = await freePort();
    const upstreamPort = await freePort();
    const fn = await startFunction(
      { PORT: String(watchdogPort), upstream_url: `http://127.0.0.1:${upstreamPort}`, IMAGE_URL: source.url, IMAGE_DIR: dir },
      { waitReady: false },
    );
    started.push(fn);
    await waitForPort(upstreamPort, 15_000, () => fn.child.exitCode === null);
    const page = await fetch(`http://127.0.0.1:${upstreamPort}/`);
    assert.equal(page.status, 200);
    await assert.rejects(fetch(`http://127.0.0.1:${watchdogPort}/`), 'PORT is left to the watchdog');
  });

  it('stops with one line naming upstream_url when it is not a URL', async () => {
    const fn = await startFunction({ upstream_url: 'localhost:3000:x', IMAGE_DIR: dir }, { waitReady: false });
    const exit = await fn.exited;
    assert.equal(exit.code, 1);
    assert.deepEqual(fn.output().trim().split('\n'), ['upstream_url: must be a URL such as http://127.0.0.1:3000, got "localhost:3000:x"']);
  });

  it("behind the watchdog, after SIGTERM keeps answering through its healthcheck_interval (plain seconds too), then exits 0", async () => {
    for (const interval of ['2s', '2']) {
      const upstreamPort = await freePort();
      const url = `http://127.0.0.1:${upstreamPort}`;
      const fn = await startFunction({ upstream_url: url, healthcheck_interval: interval, IMAGE_URL: source.url, IMAGE_DIR: dir }, { waitReady: false });
      started.push(fn);
      await waitForPort(upstreamPort, 15_000, () => fn.child.exitCode === null);
      assert.equal((await fetch(`${url}/`)).status, 200);
      const signalled = Date.now();
      fn.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1800));
      assert.equal(fn.child.exitCode, null, `${interval}: still running inside the window`);
      const during = await fetch(`${url}/`, { headers: { Connection: 'close' } });
      assert.equal(during.status, 200, `${interval}: a request the watchdog forwards after SIGTERM is answered`);
      assert.deepEqual(await fn.exited, { code: 0, signal: null });
      // The window, plus the second it keeps listening for requests the watchdog accepted at its very end.
      assert.ok(Date.now() - signalled >= 2900, `${interval}: it waited for the window`);
      assert.ok(Date.now() - signalled < 6000, `${interval}: and no longer than needed`);
    }
  });

  it('without a watchdog, healthcheck_interval means nothing: SIGTERM closes at once', async () => {
    const fn = await startFunction({ healthcheck_interval: '5s', IMAGE_URL: source.url, IMAGE_DIR: dir });
    started.push(fn);
    assert.equal((await fetch(`${fn.url}/`)).status, 200);
    const signalled = Date.now();
    fn.child.kill('SIGTERM');
    assert.deepEqual(await fn.exited, { code: 0, signal: null });
    assert.ok(Date.now() - signalled < 1500, `took ${Date.now() - signalled} ms`);
  });

  it('without a watchdog, SIGTERM with nothing in flight ends the process at once with exit code 0', async () => {
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir });
    started.push(fn);
    assert.equal((await fetch(`${fn.url}/`)).status, 200);
    const signalled = Date.now();
    fn.child.kill('SIGTERM');
    assert.deepEqual(await fn.exited, { code: 0, signal: null });
    assert.ok(Date.now() - signalled < 1500, `took ${Date.now() - signalled} ms`);
  });
});

describe('the template wrapper with another function', { timeout: 60_000 }, () => {
  let root: WrapperRoot;
  const started: Array<FunctionProcess | Watchdog> = [];
  beforeEach(() => {
    root = wrapperWith();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => ('destroy' in p ? p.destroy() : p.kill())));
    root.remove();
  });

  it("never keeps a handler's headers object or its Content-Length: every answer is framed by the bytes sent", async () => {
    const fn = await startFunction({}, { entry: root.entry });
    started.push(fn);
    const conn = await connect(fn.port);
    try {
      const shared = await conn.send('GET /shared HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(shared.body.toString(), 'a body longer than three bytes\n');
      assert.equal(shared.headers['x-shared'], 'yes');
      const missing = await conn.send('GET /missing HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), 'Not Found\n');
      const constant = await conn.send('GET /headers HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.deepEqual(JSON.parse(constant.body.toString()), { 'Content-Type': 'text/plain', 'Content-Length': 3, 'X-Shared': 'yes' }, 'the constant is untouched');
      assert.equal(constant.headers['content-type'], 'application/json; charset=utf-8');
      const json = await conn.send('GET /json HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(json.status, 201);
      assert.deepEqual(JSON.parse(json.body.toString()), { ok: true, list: [1, 2] });
      const notModified = await conn.send('GET /304 HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers['content-length'], undefined, 'no Content-Length: 0 on a 304');
      const head = await conn.send('HEAD /shared HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(head.headers['content-length'], String(Buffer.byteLength('a body longer than three bytes\n')));
      const failed = await conn.send('GET /fail HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(failed.status, 500);
      const again = await conn.send('GET /shared HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(again.status, 200);
      assert.equal(conn.leftover().length, 0);
      assert.ok(!conn.closed());
    } finally {
      conn.close();
    }
  });

  it('buffers a body up to 1 MiB by default for a function that reads bodies, and answers 413 beyond', async () => {
    const fn = await startFunction({}, { entry: root.entry });
    started.push(fn);
    const small = await fetch(`${fn.url}/echo`, { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(await small.text(), '1000');
    const none = await fetch(`${fn.url}/echo`);
    assert.equal(await none.text(), 'none');
    const big = await fetch(`${fn.url}/echo`, { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1) }).catch(() => undefined);
    assert.ok(big === undefined || big.status === 413, `status ${big?.status}`);
  });

  it('a request in flight when the watchdog window ends is answered before the function exits', async () => {
    const w = await startWatchdog({ fprocess: `node ${root.entry}`, healthcheck_interval: '1', suppress_lock: 'true' });
    started.push(w);
    await eventually(async () => (await fetch(`${w.url}/_/health`)).status === 200, 10_000, 'ready');
    w.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const began = Date.now();
    const res = await fetch(`${w.url}/slow/2500`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'slow\n');
    assert.ok(Date.now() - began >= 2400);
    assert.deepEqual(await w.exited, { code: 0, signal: null });
  });

  it('without a watchdog, SIGTERM stops accepting at once and still answers the request in flight', async () => {
    const fn = await startFunction({}, { entry: root.entry });
    started.push(fn);
    const answer = fetch(`${fn.url}/slow/1500`).then(async (r) => [r.status, await r.text()]);
    await new Promise((r) => setTimeout(r, 300));
    fn.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await fetch(`${fn.url}/echo`).then(() => 'answered', () => 'refused'), 'refused');
    assert.deepEqual(await answer, [200, 'slow\n']);
    assert.deepEqual(await fn.exited, { code: 0, signal: null });
  });
});

describe('a function that reads no body', { timeout: 90_000 }, () => {
  it('400 slow 1 MB uploads that never finish: RSS stays under 150 MB, the page answers, and the uploads are dropped', async () => {
    const source = await startSource();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-uploads-'));
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, LOG_LEVEL: 'warn' });
    const rss = (): number => {
      const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${fn.child.pid}/status`, 'utf8'))?.[1];
      assert.ok(kb !== undefined, `the process is gone:\n${fn.output()}`);
      return Number(kb) / 1024;
    };
    let sampler: NodeJS.Timeout | undefined;
    try {
      assert.equal((await fetch(`${fn.url}/`)).status, 200);
      let peak = rss();
      sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
      const size = 1024 * 1024;
      const sockets: net.Socket[] = [];
      let dropped = 0;
      for (let batch = 0; batch < 8; batch++) {
        await Promise.all(
          Array.from({ length: 50 }, () => {
            const socket = net.connect(fn.port, '127.0.0.1');
            sockets.push(socket);
            socket.on('error', () => undefined);
            socket.on('close', () => dropped++);
            socket.resume();
            return new Promise<void>((resolve) => {
              socket.once('connect', () => {
                socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`);
                socket.write(Buffer.alloc(size - 1, 97), () => resolve());
              });
            });
          }),
        );
      }
      const during = await fetch(`${fn.url}/`, { signal: AbortSignal.timeout(5000) });
      assert.equal(during.status, 200, 'the page answers while 400 uploads hang');
      await new Promise((r) => setTimeout(r, 1000));
      process.stderr.write(`# 400 slow 1 MB uploads: peak RSS ${peak.toFixed(1)} MB\n`);
      assert.ok(peak < 150, `peak RSS ${peak.toFixed(1)} MB`);
      await eventually(() => dropped === 400, 15_000, `the server drops the unfinished uploads (${dropped} of 400 so far)`);
      assert.equal(fn.child.exitCode, null);
    } finally {
      clearInterval(sampler);
      await fn.kill();
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
