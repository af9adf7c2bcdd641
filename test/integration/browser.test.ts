// A real browser: Debian's chromium, driven by playwright-core, opens the page
// directly and through a /function/todo-app/ prefix like the OpenFaaS
// gateway's, at a phone and a desktop viewport. The picture must decode and
// fit, and nothing may go wrong on the way: no console or page errors, no
// failed or other-origin requests, no Content-Security-Policy violations.
// A screenshot of every page is kept in test-artifacts/.
//
// Never skipped: without chromium the suite fails and says how to install it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { findChromium } from '../support/chromium.ts';
import { repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { startGatewayProxy, type GatewayProxy } from '../support/gateway-proxy.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const CHROMIUM = findChromium();
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
const SOURCE_WIDTH = 1200;
const SOURCE_HEIGHT = 800;

const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1440, height: 900 },
} as const;

interface Visit {
  status: number | undefined;
  title: string;
  h1: string;
  text: string;
  image?: {
    alt: string;
    complete: boolean;
    naturalWidth: number;
    naturalHeight: number;
    width: number;
    height: number;
    /** Horizontal centre of the rendered img, in CSS pixels. */
    centreX: number;
    srcScheme: string;
  };
  layout: { innerWidth: number; innerHeight: number; scrollWidth: number };
  /** The body's computed background: the page's own style applied, so the CSP let it through. */
  background: string;
  requests: string[];
  consoleErrors: string[];
  cspConsole: string[];
  pageErrors: string[];
  failed: string[];
  badResponses: string[];
  cspViolations: Array<{ directive: string; blocked: string; sample: string }>;
  screenshot: string;
}

let browser: Browser;

async function visit(url: string, viewport: { width: number; height: number }, name: string): Promise<Visit> {
  const context = await browser.newContext({ viewport, serviceWorkers: 'block' });
  try {
    // Runs before the page's own content: records every CSP violation the document reports.
    await context.addInitScript(() => {
      const seen: unknown[] = [];
      (window as unknown as { __csp: unknown[] }).__csp = seen;
      document.addEventListener(
        'securitypolicyviolation',
        (e) => seen.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }),
        true,
      );
    });
    const page = await context.newPage();
    const v: Omit<Visit, 'status' | 'title' | 'h1' | 'text' | 'layout' | 'background' | 'cspViolations' | 'screenshot'> = {
      requests: [],
      consoleErrors: [],
      cspConsole: [],
      pageErrors: [],
      failed: [],
      badResponses: [],
    };
    context.on('request', (request) => v.requests.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') v.consoleErrors.push(message.text());
      if (/content security policy/i.test(message.text())) v.cspConsole.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => v.pageErrors.push(String(error)));
    page.on('requestfailed', (request) => v.failed.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on('response', (response) => {
      if (response.status() >= 400 && response.url() !== url) v.badResponses.push(`${response.status()} ${response.url()}`);
    });

    const response = await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    // Give late requests (an icon, a lazy resource) a moment to show up.
    await page.waitForTimeout(300);
    const facts = await page.evaluate(async () => {
      const img = document.querySelector('img');
      if (img) await img.decode().catch(() => undefined);
      const box = img?.getBoundingClientRect();
      return {
        title: document.title,
        h1: document.querySelector('h1')?.textContent ?? '',
        text: document.body.innerText,
        image:
          img && box
            ? {
                alt: img.alt,
                complete: img.complete,
                naturalWidth: img.naturalWidth,
                naturalHeight: img.naturalHeight,
                width: box.width,
                height: box.height,
                centreX: box.left + box.width / 2,
                srcScheme: img.currentSrc.slice(0, img.currentSrc.indexOf(',')),
              }
            : undefined,
        background: getComputedStyle(document.body).backgroundColor,
        layout: { innerWidth: window.innerWidth, innerHeight: window.innerHeight, scrollWidth: document.documentElement.scrollWidth },
        csp: (window as unknown as { __csp: Visit['cspViolations'] }).__csp,
      };
    });
    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = path.join(ARTIFACTS, `browser-${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { ...v, status: response?.status(), ...facts, cspViolations: facts.csp, screenshot };
  } finally {
    await context.close();
  }
}

/** What every page must show, whatever its status: no errors, no violations, no other requests. */
function assertClean(v: Visit, pageUrl: string): void {
  assert.deepEqual(v.pageErrors, [], 'no uncaught errors in the page');
  assert.equal(v.background, 'rgb(246, 246, 244)', "the page's inline style applied (#f6f6f4): the CSP hash matches");
  assert.deepEqual(v.cspViolations, [], 'no securitypolicyviolation events');
  assert.deepEqual(v.cspConsole, [], 'no console messages about the Content Security Policy');
  assert.deepEqual(v.failed, [], 'no failed requests');
  assert.deepEqual(v.badResponses, [], 'no 4xx/5xx subresource answers');
  // data: URLs are not network requests; everything else must be the page itself.
  const network = v.requests.filter((u) => !u.startsWith('data:'));
  assert.deepEqual(network, [pageUrl], 'the page is the only request: no other origin, no /favicon.ico, nothing else');
}

function assertImagePage(v: Visit, pageUrl: string, viewport: { width: number; height: number }): void {
  assert.equal(v.status, 200);
  assert.equal(v.title, 'Random photo · todo-app', 'the tab names a photo page and the app');
  assert.equal(v.h1, 'Random photo');
  assert.match(v.text, /todo-app, the project of the DevOps with Kubernetes course/, 'the app is named on the page');
  assert.deepEqual(v.consoleErrors, [], 'no console errors');
  assertClean(v, pageUrl);
  assert.ok(v.image, 'the page has an img');
  const img = v.image;
  assert.match(img.srcScheme, /^data:image\/jpeg;base64$/, 'the image is inline');
  assert.ok(img.alt.trim().length > 0, 'the img has alt text');
  assert.equal(img.complete, true, 'the img finished loading');
  assert.equal(img.naturalWidth, SOURCE_WIDTH, 'the img decoded to the source picture');
  assert.equal(img.naturalHeight, SOURCE_HEIGHT);
  assert.ok(img.width > 0 && img.height > 0, 'the img is rendered');
  assert.ok(img.width <= viewport.width, `rendered width ${img.width} fits the viewport width ${viewport.width}`);
  assert.ok(img.height <= viewport.height, `rendered height ${img.height} fits the viewport height ${viewport.height}`);
  assert.ok(Math.abs(img.width / img.height - SOURCE_WIDTH / SOURCE_HEIGHT) < 0.02, 'the aspect ratio is kept');
  assert.ok(Math.abs(img.centreX - v.layout.innerWidth / 2) <= 1, `the picture is centred (${img.centreX} of ${v.layout.innerWidth})`);
  // What it is and when it changes, in words: the source, the TTL, the photo's id (the stand-in's Picsum-ID).
  assert.match(v.text, /A new photo from 127\.0\.0\.1:\d+ every 10 minutes\./);
  assert.match(v.text, /Photo 1 from 127\.0\.0\.1:\d+, fetched \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\. The first visit after .* brings the next one\./);
  assert.ok(v.layout.scrollWidth <= v.layout.innerWidth, `no horizontal scroll (${v.layout.scrollWidth} > ${v.layout.innerWidth})`);
}

describe('a real browser (chromium via playwright-core)', { timeout: 120_000 }, () => {
  let source: ImageSource;
  let fn: FunctionProcess;
  let proxy: GatewayProxy;
  const dirs: string[] = [];

  before(async () => {
    if (CHROMIUM === undefined) {
      throw new Error(
        'no Chromium: the browser tests are never skipped. ' +
          'Install it with `bash scripts/ensure-chromium.sh` (Debian: apt-get install chromium) or set CHROMIUM_PATH.',
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    source = await startSource({ width: SOURCE_WIDTH, height: SOURCE_HEIGHT, noise: true, pictures: 1 });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'todo-browser-'));
    dirs.push(dir);
    fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, LOG_LEVEL: 'info' });
    proxy = await startGatewayProxy(fn.url);
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await fn?.kill('SIGTERM');
    await source?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const ways = [
    { way: 'direct', url: () => `${fn.url}/` },
    { way: 'gateway', url: () => proxy.url },
    { way: 'gateway-noslash', url: () => proxy.url.replace(/\/$/, '') },
  ];
  for (const { way, url } of ways) {
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      test(`${way}, ${size} ${viewport.width}x${viewport.height}: the picture decodes and fits, nothing is blocked or fails`, async () => {
        const pageUrl = url();
        const v = await visit(pageUrl, viewport, `${way}-${size}`);
        assertImagePage(v, pageUrl, viewport);
      });
    }
  }

  test('through the gateway, the server saw only the function path: no /favicon.ico, nothing outside the prefix', () => {
    assert.ok(proxy.seen.length >= 4, 'the gateway tests ran through the proxy');
    for (const hit of proxy.seen) {
      assert.ok(hit.forwarded === '/', `the proxy was asked only for the page, got ${hit.method} ${hit.path}`);
      assert.equal(hit.status, 200, `${hit.path} answered 200`);
    }
    assert.ok(!proxy.seen.some((hit) => hit.path.includes('favicon')), 'no favicon request reached the server');
  });

  // The detectors above must be able to fail: a page that breaks each rule, served
  // through the same proxy, has to trip every one of them.
  test('the detectors work: a page that breaks the rules is caught', async () => {
    const bad = http.createServer((req, res) => {
      if (req.url !== '/') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "style-src 'sha256-AAAA'" });
      // No icon link, an inline style the CSP does not allow, an image from another origin.
      res.end('<!DOCTYPE html><html><head><title>bad</title><style>body{color:red}</style></head><body><h1>bad</h1><img alt="x" src="http://127.0.0.1:9/x.png"></body></html>');
    });
    await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', () => resolve()));
    const badProxy = await startGatewayProxy(`http://127.0.0.1:${(bad.address() as net.AddressInfo).port}`);
    try {
      const v = await visit(badProxy.url, VIEWPORTS.phone, 'canary');
      assert.ok(v.cspViolations.some((c) => c.directive.startsWith('style-src')), `securitypolicyviolation recorded: ${JSON.stringify(v.cspViolations)}`);
      assert.ok(v.cspConsole.length > 0, 'the CSP console message is recorded');
      assert.ok(v.requests.some((u) => u.startsWith('http://127.0.0.1:9/')), 'the other-origin request is recorded');
      assert.ok(v.failed.length > 0, 'the failed request is recorded');
      assert.throws(() => assertClean(v, badProxy.url), 'assertClean rejects it');
      // Headless chromium asks for /favicon.ico when a page names no icon; Playwright does not
      // report that request, so the server-side record is what sees it.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(
        badProxy.seen.some((hit) => hit.path === '/function/todo-app/favicon.ico' || hit.path === '/favicon.ico'),
        `the favicon request reaches the server: ${JSON.stringify(badProxy.seen)}`,
      );
    } finally {
      await badProxy.close();
      await new Promise<void>((resolve) => bad.close(() => resolve()));
    }
  });

  test('an AVIF from the source: chromium decodes the inline image/avif at its full size', async () => {
    const avif = await startSource({ width: 600, height: 400, format: 'avif', pictures: 1 });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'todo-browser-avif-'));
    dirs.push(dir);
    const fnAvif = await startFunction({ IMAGE_URL: avif.url, IMAGE_DIR: dir, LOG_LEVEL: 'info' });
    try {
      const pageUrl = `${fnAvif.url}/`;
      const v = await visit(pageUrl, VIEWPORTS.desktop, 'avif');
      assert.equal(v.status, 200);
      assert.ok(v.image, 'the page has its img');
      assert.equal(v.image.srcScheme, 'data:image/avif;base64');
      assert.equal(v.image.complete, true);
      assert.deepEqual([v.image.naturalWidth, v.image.naturalHeight], [600, 400], 'the browser decoded the AVIF');
      assertClean(v, pageUrl);
    } finally {
      await fnAvif.kill('SIGTERM');
      await avif.close();
    }
  });

  test('the 503 page tries again by itself after Retry-After, and shows the picture once the source is back', async () => {
    const flaky = await startSource({ width: 320, height: 240, pictures: 1 });
    flaky.mode = 'error';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'todo-browser-retry-'));
    dirs.push(dir);
    const down = await startFunction({ IMAGE_URL: flaky.url, IMAGE_DIR: dir, FETCH_TIMEOUT_MS: '500', LOG_LEVEL: 'info' });
    const context = await browser.newContext({ viewport: VIEWPORTS.phone, serviceWorkers: 'block' });
    try {
      const page = await context.newPage();
      const statuses: number[] = [];
      page.on('response', (response) => {
        if (response.url() === `${down.url}/`) statuses.push(response.status());
      });
      const first = await page.goto(`${down.url}/`, { waitUntil: 'load' });
      assert.equal(first?.status(), 503);
      const retryAfter = Number(first?.headers()['retry-after']);
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      flaky.mode = 'ok';
      // No click, no script: the page's own meta refresh brings the picture.
      await page.waitForSelector('img', { timeout: (retryAfter + 10) * 1000 });
      assert.equal(await page.evaluate(() => document.querySelector('img')!.decode().then(() => document.querySelector('img')!.naturalWidth)), 320);
      assert.deepEqual([statuses[0], statuses.at(-1)], [503, 200], `the page reloaded itself: ${statuses.join(', ')}`);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-503-then-picture.png'), fullPage: true });
    } finally {
      await context.close();
      await down.kill('SIGTERM');
      await flaky.close();
    }
  });

  test('no image and a failing source: the 503 page renders cleanly', async () => {
    const failing = await startSource({ width: 64, height: 64, pictures: 1 });
    failing.mode = 'error';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'todo-browser-503-'));
    dirs.push(dir);
    const down = await startFunction({ IMAGE_URL: failing.url, IMAGE_DIR: dir, FETCH_TIMEOUT_MS: '500', LOG_LEVEL: 'info' });
    const downProxy = await startGatewayProxy(down.url);
    try {
      for (const [way, pageUrl] of [
        ['direct', `${down.url}/`],
        ['gateway', downProxy.url],
      ] as const) {
        const v = await visit(pageUrl, VIEWPORTS.phone, `503-${way}`);
        assert.equal(v.status, 503, way);
        assert.equal(v.h1, 'Random photo');
        assert.equal(v.title, 'Random photo unavailable · todo-app');
        assert.match(v.text, /could not be fetched from 127\.0\.0\.1:\d+ yet\. This page tries again in \d+ seconds?\./);
        assert.equal(v.image, undefined, 'no img on the 503 page');
        // Chromium reports a non-2xx main document as a "Failed to load resource" console
        // error of its own; the page itself must add none.
        const ours = v.consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 503/.test(m));
        assert.deepEqual(ours, [], `${way}: no console errors from the page`);
        assertClean(v, pageUrl);
      }
      assert.ok(failing.downloads >= 1, 'the function did try the source');
    } finally {
      await downProxy.close();
      await down.kill('SIGTERM');
      await failing.close();
    }
  });
});
