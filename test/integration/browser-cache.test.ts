// What a real browser does with the page's Cache-Control (Debian's chromium via
// playwright-core): the page is the same until the next image, so a second visit
// within the TTL is read from the browser's own cache without a request; a reload
// asks with If-None-Match and gets a 304; past the TTL the next visit asks again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { findChromium } from '../support/chromium.ts';
import { startFunction, type FunctionProcess } from '../support/fn.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const CHROMIUM = findChromium();
const TTL_S = 6;

describe("a real browser and the page's Cache-Control", { timeout: 60_000 }, () => {
  let browser: Browser;
  let source: ImageSource;
  let fn: FunctionProcess;
  let dir: string;

  before(async () => {
    if (CHROMIUM === undefined) throw new Error('no Chromium: install it with `bash scripts/ensure-chromium.sh` or set CHROMIUM_PATH');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    source = await startSource({ width: 320, height: 240, pictures: 2 });
    dir = mkdtempSync(path.join(os.tmpdir(), 'todo-browser-cache-'));
    fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, IMAGE_TTL_SECONDS: String(TTL_S), LOG_LEVEL: 'debug' });
  });
  after(async () => {
    await browser?.close();
    await fn?.kill();
    await source?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The requests for the page that reached the function: its LOG_LEVEL=debug `request` lines. */
  const served = (): number => fn.logs().filter((l) => l.msg === 'request' && l.path === '/').length;

  test('a second visit within the TTL reads the browser cache; a reload gets a 304; past the TTL the browser asks again', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const url = `${fn.url}/`;
      const first = await page.goto(url);
      assert.equal(first?.status(), 200);
      const cacheControl = first!.headers()['cache-control']!;
      assert.match(cacheControl, /^max-age=\d+, /);
      const fetchedAt = Date.parse((await page.getAttribute('time', 'datetime'))!);
      const image = await page.getAttribute('img', 'src');
      await new Promise((r) => setTimeout(r, 200)); // the log line reaches the test
      assert.equal(served(), 1);

      await page.goto('about:blank');
      await page.goto(url);
      assert.equal(await page.getAttribute('img', 'src'), image);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(served(), 1, 'the second visit was answered by the browser cache: no request reached the function');

      const reloaded = await page.reload();
      assert.ok(reloaded?.status() === 304 || reloaded?.status() === 200, `reload: ${reloaded?.status()}`);
      assert.equal(await page.getAttribute('img', 'src'), image, 'the same picture after the reload');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(served(), 2, 'the reload asked the function once');
      // Chromium revalidates a reload with If-None-Match: a 304, which playwright reports as such or as the cached 200.
      const revalidation = await reloaded!.request().allHeaders();
      assert.ok(revalidation['if-none-match'] === first!.headers().etag || reloaded!.status() === 304, 'the reload was a conditional request for the ETag');

      // Past the TTL the stored page is stale: the next visit reaches the function again.
      await new Promise((r) => setTimeout(r, Math.max(0, fetchedAt + TTL_S * 1000 + 300 - Date.now())));
      await page.goto('about:blank');
      await page.goto(url);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(served(), 3, 'past the TTL the browser asked the function');
    } finally {
      await context.close();
    }
  });
});
