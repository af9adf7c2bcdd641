// The node22-ts template's wrapper as the platforms start it: under of-watchdog
// (upstream_url and healthcheck_interval in its environment), under Knative
// (PORT set to the watchdog's own port), and alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startFunction, type FunctionProcess } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';

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

  it("after SIGTERM keeps answering through the watchdog's healthcheck_interval, then exits 0", async () => {
    const fn = await startFunction({ healthcheck_interval: '2s', IMAGE_URL: source.url, IMAGE_DIR: dir });
    started.push(fn);
    assert.equal((await fetch(`${fn.url}/`)).status, 200);
    const signalled = Date.now();
    fn.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(fn.child.exitCode, null, 'still running inside the drain window');
    const during = await fetch(`${fn.url}/`, { headers: { Connection: 'close' } });
    assert.equal(during.status, 200, 'a request the watchdog forwards after SIGTERM is answered');
    assert.deepEqual(await fn.exited, { code: 0, signal: null });
    assert.ok(Date.now() - signalled >= 1900, 'it waited for the drain window');
    assert.ok(Date.now() - signalled < 10_000, 'and no longer than needed');
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
