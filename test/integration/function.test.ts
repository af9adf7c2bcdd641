// The story of one user of the function, from the first page to a crash and a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import sharp from 'sharp';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage, imageMimeOf, imageOf } from '../support/page.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

describe('the todo-app function', () => {
  let source: ImageSource;
  let dir: string;
  const started: FunctionProcess[] = [];
  const start = async (env: Record<string, string> = {}): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, ...env });
    started.push(fn);
    return fn;
  };

  beforeEach(async () => {
    source = await startSource({ width: 640, height: 480 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-fn-'));
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((fn) => fn.kill()));
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('downloads the image on the first request, saves it in the seed layout and inlines exactly those bytes', async () => {
    const fn = await start();
    const before = Date.now();
    const page = await getPage(`${fn.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(source.downloads, 1);
    const saved = fs.readFileSync(path.join(dir, 'image.jpg'));
    assert.ok(saved.equals(source.served[0]!), 'image.jpg holds the bytes the source sent');
    assert.equal(imageMimeOf(page.body), 'image/jpeg');
    assert.ok(imageOf(page.body).equals(saved), 'the page inlines the saved bytes');
    const stamp = fs.readFileSync(path.join(dir, '.ts'), 'utf8');
    assert.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(stamp) >= before - 1000 && Date.parse(stamp) <= Date.now());
  });

  it('within the TTL downloads nothing and reads nothing from disk', async () => {
    const fn = await start();
    const first = await getPage(`${fn.url}/`);
    // Another picture with a newer time on disk: a process that read the volume would show it.
    fs.writeFileSync(path.join(dir, 'image.jpg'), await makeJpeg(42));
    fs.writeFileSync(path.join(dir, '.ts'), new Date(Date.now() + 60_000).toISOString());
    for (let i = 0; i < 20; i++) {
      const page = await getPage(`${fn.url}/`);
      assert.equal(page.body, first.body);
    }
    assert.equal(source.downloads, 1);
  });

  it('after kill -9, a restart on the same folder serves the saved image with no download', async () => {
    const first = await start();
    const page = await getPage(`${first.url}/`);
    assert.deepEqual(await first.kill('SIGKILL'), { code: null, signal: 'SIGKILL' });
    const second = await start();
    const again = await getPage(`${second.url}/`);
    assert.equal(again.status, 200);
    assert.ok(imageOf(again.body).equals(imageOf(page.body)));
    assert.equal(source.downloads, 1);
  });

  it("adopts a folder the course's app wrote (image.jpg and .ts) as is", async () => {
    const theirs = await makeJpeg(99, 300, 200);
    fs.writeFileSync(path.join(dir, 'image.jpg'), theirs);
    fs.writeFileSync(path.join(dir, '.ts'), new Date(Date.now() - 60_000).toISOString());
    const fn = await start();
    const page = await getPage(`${fn.url}/`);
    assert.ok(imageOf(page.body).equals(theirs));
    assert.equal(source.downloads, 0);
  });

  it('past the TTL answers at once with the old image, refreshes once, then serves the new one', async () => {
    const fn = await start({ IMAGE_TTL_SECONDS: '1' });
    const old = await getPage(`${fn.url}/`);
    const oldStamp = fs.readFileSync(path.join(dir, '.ts'), 'utf8');
    await new Promise((r) => setTimeout(r, 1100));
    source.delayMs = 800;
    const answers = await Promise.all(Array.from({ length: 10 }, () => getPage(`${fn.url}/`)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.ok(imageOf(answer.body).equals(imageOf(old.body)), 'the stale image is served while the refresh runs');
      assert.ok(answer.ms < 700, `answered in ${answer.ms} ms, so it waited for the download`);
    }
    const fresh = await eventually(
      async () => {
        const page = await getPage(`${fn.url}/`);
        return page.headers.get('etag') !== old.headers.get('etag') && page;
      },
      5000,
      'the new image is served',
    );
    assert.equal(source.downloads, 2);
    assert.ok(imageOf(fresh.body).equals(source.served[1]!));
    // The new page is served before it is saved: the files follow a moment later.
    await eventually(
      () => fs.readFileSync(path.join(dir, 'image.jpg')).equals(source.served[1]!) && Date.parse(fs.readFileSync(path.join(dir, '.ts'), 'utf8')) > Date.parse(oldStamp),
      5000,
      'image.jpg holds the new image and .ts its later time',
    );
  });

  it('two processes on one folder past the TTL download once between them (the lock on the volume)', async () => {
    const a = await start({ IMAGE_TTL_SECONDS: '1' });
    const b = await start({ IMAGE_TTL_SECONDS: '1' });
    await getPage(`${a.url}/`);
    await getPage(`${b.url}/`);
    assert.equal(source.downloads, 1);
    await new Promise((r) => setTimeout(r, 1100));
    source.delayMs = 600;
    await Promise.all([getPage(`${a.url}/`), getPage(`${b.url}/`)]);
    await eventually(async () => (await getPage(`${b.url}/`)).body.includes(source.served[1]?.toString('base64') ?? 'none'), 5000, 'b serves the new image');
    await eventually(async () => (await getPage(`${a.url}/`)).body.includes(source.served[1]!.toString('base64')), 5000, 'a serves the new image');
    assert.equal(source.downloads, 2);
  });

  it('answers HEAD, 304 on If-None-Match, the page to POST, 405 with Allow, 404 elsewhere', async () => {
    const fn = await start();
    const page = await getPage(`${fn.url}/`);
    const etag = page.headers.get('etag')!;
    assert.match(etag, /^"/);
    assert.match(page.headers.get('cache-control')!, /^max-age=\d+, stale-while-revalidate=10, stale-if-error=3600$/);

    const head = await fetch(`${fn.url}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(page.body)));
    assert.equal((await head.arrayBuffer()).byteLength, 0);

    const cached = await fetch(`${fn.url}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(cached.status, 304);
    assert.equal(cached.headers.get('etag'), etag);
    assert.match(cached.headers.get('cache-control')!, /^max-age=\d+, stale-while-revalidate=10, stale-if-error=3600$/, 'a 304 says how long the page may be kept, as the 200');
    // Last-Modified is the download time from .ts; If-Modified-Since gives 304 like If-None-Match.
    const lastModified = page.headers.get('last-modified')!;
    assert.equal(Date.parse(lastModified), Math.floor(Date.parse(fs.readFileSync(path.join(dir, '.ts'), 'utf8')) / 1000) * 1000);
    assert.equal((await fetch(`${fn.url}/`, { headers: { 'If-Modified-Since': lastModified } })).status, 304);
    assert.equal((await fetch(`${fn.url}/`, { headers: { 'If-Modified-Since': new Date(Date.parse(lastModified) - 1000).toUTCString() } })).status, 200);
    assert.equal((await fetch(`${fn.url}/`, { headers: { 'If-Modified-Since': lastModified, 'If-None-Match': '"other"' } })).status, 200, 'If-None-Match decides when both are sent');
    assert.equal((await cached.arrayBuffer()).byteLength, 0);
    assert.equal((await fetch(`${fn.url}/`, { headers: { 'If-None-Match': '"stale"' } })).status, 200);
    // RFC 9110 13.1: a 304 is for GET and HEAD only; If-Modified-Since counts only as an HTTP-date.
    assert.equal((await fetch(`${fn.url}/`, { method: 'POST', headers: { 'If-None-Match': '*' } })).status, 412);
    assert.equal((await fetch(`${fn.url}/`, { method: 'POST', headers: { 'If-None-Match': etag } })).status, 412);
    assert.equal((await fetch(`${fn.url}/`, { method: 'POST', headers: { 'If-Modified-Since': lastModified } })).status, 200, 'ignored on POST');
    assert.equal((await fetch(`${fn.url}/`, { headers: { 'If-Modified-Since': '2027' } })).status, 200, 'not an HTTP-date');

    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const answer = await fetch(`${fn.url}/`, { method, body: method === 'DELETE' ? undefined : 'x' });
      assert.equal(answer.status, 405, method);
      assert.equal(answer.headers.get('allow'), 'GET, HEAD, POST');
    }
    // faas-cli invoke and the OpenFaaS portal send POST: the same page, the body unread.
    const posted = await fetch(`${fn.url}/`, { method: 'POST', body: 'x' });
    assert.equal(posted.status, 200);
    assert.equal(await posted.text(), page.body);
    for (const other of ['/image.jpg', '/.ts', '/favicon.ico', '/_shutdown']) {
      assert.equal((await fetch(`${fn.url}${other}`)).status, 404, other);
    }
    assert.equal((await getPage(`${fn.url}/?utm=1`)).status, 200);
    assert.equal(fn.child.exitCode, null);
  });

  it('with ENABLE_SHUTDOWN=true, /_shutdown ends the process with exit code 1 and the image survives it', async () => {
    const fn = await start({ ENABLE_SHUTDOWN: 'true' });
    const page = await getPage(`${fn.url}/`);
    // A probe's HEAD, or any other method, must not kill it: 405 names the one method that does.
    for (const method of ['HEAD', 'POST', 'OPTIONS']) {
      const other = await fetch(`${fn.url}/_shutdown`, { method });
      assert.equal(other.status, 405, method);
      assert.equal(other.headers.get('allow'), 'GET', method);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fn.child.exitCode, null, 'alive after HEAD, POST and OPTIONS');
    const answer = await fetch(`${fn.url}/_shutdown`);
    assert.equal(answer.status, 200);
    assert.deepEqual(await fn.exited, { code: 1, signal: null });
    const next = await start();
    assert.ok(imageOf((await getPage(`${next.url}/`)).body).equals(imageOf(page.body)));
    assert.equal(source.downloads, 1);
  });

  it('shows a careful page: title, heading, alt text, the times, a CSP and nosniff', async () => {
    const fn = await start();
    const page = await getPage(`${fn.url}/`);
    assert.match(page.body, /<title>Random photo · todo-app<\/title>/);
    assert.match(page.body, /<h1>Random photo<\/h1>/);
    assert.match(page.body, /<img src="data:image\/jpeg;base64,[^"]+" alt="[^"]+">/);
    const stamp = fs.readFileSync(path.join(dir, '.ts'), 'utf8');
    assert.ok(page.body.includes(`<time datetime="${stamp}">`), 'the fetch time is on the page');
    assert.ok(page.body.includes(`<time datetime="${new Date(Date.parse(stamp) + 600_000).toISOString()}">`), 'the due time is on the page');
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; img-src data:/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  });

  it('with IMAGE_WIDTH resizes once, keeps the copy beside the untouched original, and reuses it after a restart', async () => {
    source.mode = 'ok';
    const fn = await start({ IMAGE_WIDTH: '200' });
    const page = await getPage(`${fn.url}/`);
    const shown = imageOf(page.body);
    assert.equal((await sharp(shown).metadata()).width, 200);
    assert.ok(fs.readFileSync(path.join(dir, 'image.jpg')).equals(source.served[0]!), 'the original stays as downloaded');
    const variants = fs.readdirSync(dir).filter((name) => name.startsWith('variant-'));
    assert.equal(variants.length, 1);
    const variantFile = path.join(dir, variants[0]!);
    assert.ok(fs.readFileSync(variantFile).equals(shown));
    const mtime = fs.statSync(variantFile).mtimeMs;
    await fn.kill();
    const again = await start({ IMAGE_WIDTH: '200' });
    assert.ok(imageOf((await getPage(`${again.url}/`)).body).equals(shown));
    assert.equal(fs.statSync(variantFile).mtimeMs, mtime, 'the restart read the copy, it did not resize again');
  });

  it('an AVIF from the source is served as image/avif, kept as is, and resized to a JPEG with IMAGE_WIDTH', async () => {
    const avif = await startSource({ width: 320, height: 240, format: 'avif', pictures: 1 });
    try {
      const fn = await start({ IMAGE_URL: avif.url });
      const page = await getPage(`${fn.url}/`);
      assert.equal(page.status, 200, fn.output());
      assert.equal(imageMimeOf(page.body), 'image/avif');
      assert.ok(imageOf(page.body).equals(avif.served[0]!), 'the page carries the AVIF as downloaded');
      assert.ok(fs.readFileSync(path.join(dir, 'image.jpg')).equals(avif.served[0]!), 'and the volume keeps it');
      await fn.kill();
      const resized = await start({ IMAGE_URL: avif.url, IMAGE_WIDTH: '200' });
      const small = await getPage(`${resized.url}/`);
      assert.equal(imageMimeOf(small.body), 'image/jpeg');
      assert.equal((await sharp(imageOf(small.body)).metadata()).width, 200);
      assert.equal(avif.downloads, 1, 'the restart used the saved AVIF');
    } finally {
      await avif.close();
    }
  });

  it('logs start-up, a missing and a stale image, the download and a failure, on stdout and in LOG_FILE', async () => {
    const logFile = path.join(dir, 'logs', 'todo-app.log');
    const fn = await start({ IMAGE_TTL_SECONDS: '1', LOG_FILE: logFile, FETCH_TIMEOUT_MS: '1000' });
    await getPage(`${fn.url}/`);
    await new Promise((r) => setTimeout(r, 1100));
    source.mode = 'error';
    await getPage(`${fn.url}/`);
    await eventually(() => fn.logs().some((line) => line.msg === 'refresh failed'), 5000, 'the failure is logged');
    const lines = fn.logs();
    const find = (msg: string): Record<string, unknown> => {
      const line = lines.find((l) => l.msg === msg);
      assert.ok(line, `no "${msg}" line in:\n${fn.output()}`);
      return line;
    };
    assert.equal((find('todo-app started').settings as { imageUrl: string }).imageUrl, source.url);
    find('image missing');
    assert.equal(typeof find('image stale').ageSeconds, 'number');
    find('download start');
    const done = find('download done');
    assert.equal(done.bytes, source.served[0]!.length);
    assert.equal(typeof done.ms, 'number');
    assert.equal(done.picsumId, '1');
    const failed = find('refresh failed');
    assert.equal(failed.code, 'HTTP_STATUS');
    assert.match(String(failed.reason), /503/);
    const fileLines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    assert.deepEqual(
      fileLines.map((l) => l.msg),
      lines.map((l) => l.msg),
    );
  });

  it('stops at start with one line naming a bad setting', async () => {
    const fn = await startFunction({ IMAGE_URL: 'ftp://example.com/x', IMAGE_DIR: dir }, { waitReady: false });
    const exit = await fn.exited;
    assert.notEqual(exit.code, 0);
    assert.deepEqual(fn.output().trim().split('\n'), ['IMAGE_URL: must be an http or https URL, got "ftp://example.com/x"']);
  });

  it("the start line says where it serves and how old the saved image is; LOG_LEVEL=debug logs each request with the age and the TTL", async () => {
    const first = await start({ LOG_LEVEL: 'info' });
    await getPage(`${first.url}/`);
    await first.kill('SIGTERM');
    assert.ok(!first.logs().some((line) => line.msg === 'request'), 'no request lines at info');
    const stamp = fs.readFileSync(path.join(dir, '.ts'), 'utf8').trim();
    await new Promise((r) => setTimeout(r, 300));

    const second = await start({ LOG_LEVEL: 'debug' });
    await eventually(() => second.logs().some((line) => line.msg === 'todo-app started'), 3000, 'the start line, with no request');
    const [startLine] = second.logs();
    assert.equal(startLine?.msg, 'todo-app started', 'the first line');
    assert.equal(startLine.url, `http://localhost:${second.port}`);
    const image = startLine.image as { fetchedAt: string; ageSeconds: number; ttlSeconds: number; state: string };
    assert.equal(image.fetchedAt, stamp, "the saved image's time, from .ts");
    assert.ok(image.ageSeconds >= 0.3 && image.ageSeconds < 60, `age ${image.ageSeconds}`);
    assert.equal(image.ttlSeconds, 600);
    assert.equal(image.state, 'fresh');
    await getPage(`${second.url}/`);
    await getPage(`${second.url}/?again`);
    const requests = await eventually(() => {
      const lines = second.logs().filter((line) => line.msg === 'request');
      return lines.length === 2 && lines;
    }, 3000, 'one debug line per request');
    for (const line of requests) {
      assert.equal(line.level, 20);
      assert.equal(line.ttlSeconds, 600);
      assert.ok(typeof line.ageSeconds === 'number' && line.ageSeconds >= image.ageSeconds, `Image age: ${line.ageSeconds}, timeout: ${line.ttlSeconds}`);
    }
    assert.equal(source.downloads, 1);
  });

  it('a cold start with a cached image, verified by the start that saved it, loads neither got, sharp nor proper-lockfile', async () => {
    const trace = path.join(dir, 'imports.txt');
    const env = { NODE_OPTIONS: `--import=${path.join(repoRoot, 'test/fixtures/trace-imports.mjs')}`, TRACE_IMPORTS_FILE: trace };
    const lazy = /\/node_modules\/(got|sharp|proper-lockfile)\//;
    // The first start downloads: the trace sees all three, so it can see them.
    const first = await start(env);
    await getPage(`${first.url}/`);
    await first.kill();
    const downloaded = fs.readFileSync(trace, 'utf8');
    for (const name of ['got', 'sharp', 'proper-lockfile']) assert.ok(downloaded.includes(`/node_modules/${name}/`), name);
    fs.rmSync(trace);
    const second = await start(env);
    assert.equal((await getPage(`${second.url}/`)).status, 200);
    const cold = fs.readFileSync(trace, 'utf8');
    assert.ok(cold.includes('/dist/function/handler.js'), 'the trace ran');
    assert.deepEqual(cold.split('\n').filter((url) => lazy.test(url)), []);
  });
});
