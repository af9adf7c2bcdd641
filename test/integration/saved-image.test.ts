// Whatever the volume holds, the function keeps working: a picture that does
// not decode, a file that is not a file, a `.ts` from another clock. Each is
// planted for real in the folder a real `node dist/index.js` reads, and the
// function must serve only pictures that decode, or download a new one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { cutWithEndMarker, decodesStrictly, withClaimedSize } from '../support/badPictures.ts';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage, imageMimeOf, imageOf } from '../support/page.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

const HOUR_MS = 3600_000;
const WIDTH = 200;

/** The time the page says the image was fetched. */
function fetchedTime(html: string): string {
  const match = /fetched <time datetime="([^"]+)">/.exec(html);
  assert.ok(match, `no fetch time on the page: ${html.slice(0, 300)}`);
  return match[1]!;
}

/** Runs every job to its end before failing with the first error: no job starts a process after the cleanup. */
async function allOf(jobs: Array<Promise<void>>): Promise<void> {
  const failure = (await Promise.allSettled(jobs)).find((job): job is PromiseRejectedResult => job.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}

function ignoredLines(fn: FunctionProcess): Array<Record<string, unknown>> {
  return fn.logs().filter((line) => line.msg === 'saved image ignored; a download will replace it');
}

describe('nothing on the volume can stop the function', () => {
  let source: ImageSource;
  let good: Buffer;
  const dirs: string[] = [];
  const started: FunctionProcess[] = [];

  const folder = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-saved-'));
    dirs.push(dir);
    return dir;
  };
  const start = async (dir: string, env: Record<string, string> = {}, readyTimeoutMs = 15_000): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, LOG_LEVEL: 'info', ...env }, { readyTimeoutMs });
    started.push(fn);
    return fn;
  };
  /** A page whose picture decodes strictly and came from the source (resized when `width` is set). */
  const assertGoodPage = async (fn: FunctionProcess, width?: number): Promise<Buffer> => {
    const page = await getPage(fn.url);
    assert.equal(page.status, 200, `a page, not ${page.status}:\n${fn.output()}`);
    const shown = imageOf(page.body);
    assert.ok(await decodesStrictly(shown), 'the picture on the page decodes strictly');
    if (width === undefined) assert.ok(source.served.some((picture) => picture.equals(shown)), 'it is a picture the source sent');
    else assert.ok(((await sharp(shown).metadata()).width ?? Infinity) <= width, 'it is the resized copy');
    return shown;
  };

  before(async () => {
    source = await startSource({ width: 320, height: 240, noise: true });
    good = await makeJpeg(77, 320, 240, true);
  });
  after(async () => {
    await Promise.all(started.map((fn) => fn.kill()));
    await source.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a JPEG from the source whose scan is broken (cut, end marker added) is never saved: with IMAGE_WIDTH, a 503, then the next good picture', async () => {
    const dir = folder();
    source.mode = 'corrupt';
    try {
      const fn = await start(dir, { IMAGE_WIDTH: String(WIDTH), FETCH_TIMEOUT_MS: '3000' });
      const first = await getPage(fn.url);
      assert.equal(first.status, 503, 'the broken picture is refused');
      assert.equal(fs.existsSync(path.join(dir, 'image.jpg')), false, 'and not saved');
      const failed = fn.logs().find((line) => line.msg === 'refresh failed');
      assert.equal(failed?.code, 'UNDECODABLE', `the log says why:\n${fn.output()}`);
      source.mode = 'ok';
      await eventually(async () => (await getPage(fn.url)).status === 200, 10_000, 'the next good download is served');
      await assertGoodPage(fn, WIDTH);
    } finally {
      source.mode = 'ok';
    }
  });

  test('a saved picture that does not decode is never served, whatever its .ts says: a download replaces it, said once in the log', async () => {
    const broken: Array<[string, Buffer]> = [
      ['half written', good.subarray(0, good.length >> 1)],
      ['cut, end marker added', cutWithEndMarker(good)],
      ['a header claiming 40000 x 40000', withClaimedSize(good, 40_000, 40_000)],
      ['random bytes', randomBytes(20_000)],
      ['empty', Buffer.alloc(0)],
    ];
    const cases = broken.flatMap(([what, bytes]) => [undefined, WIDTH].map((width) => ({ what, bytes, width })));
    // Five processes at a time: enough to keep the test short, few enough for two cores.
    for (let i = 0; i < cases.length; i += 5) {
      await allOf(
        cases.slice(i, i + 5).map(async ({ what, bytes, width }) => {
          const dir = folder();
          fs.writeFileSync(path.join(dir, 'image.jpg'), bytes);
          fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
          const fn = await start(dir, width === undefined ? {} : { IMAGE_WIDTH: String(width) });
          const label = `${what}${width === undefined ? '' : `, IMAGE_WIDTH=${width}`}`;
          const shown = await assertGoodPage(fn, width).catch((error: Error) => assert.fail(`${label}: ${error.message}`));
          await assertGoodPage(fn, width);
          assert.ok(!shown.equals(bytes), `${label}: the planted bytes are not served`);
          assert.ok(source.served.some((picture) => picture.equals(fs.readFileSync(path.join(dir, 'image.jpg')))), `${label}: the download replaced it`);
          assert.equal(ignoredLines(fn).length, 1, `${label}: said once:\n${fn.output()}`);
        }),
      );
    }
  });

  test('image.jpg that is a FIFO, a link to /dev/zero or a folder: the start does not wait on it, and a download follows', async () => {
    const plants: Array<[string, (file: string) => void]> = [
      ['a FIFO with no writer', (file) => assert.equal(spawnSync('mkfifo', [file]).status, 0)],
      ['a link to /dev/zero', (file) => fs.symlinkSync('/dev/zero', file)],
      ['a folder', (file) => fs.mkdirSync(file)],
    ];
    await allOf(
      plants.map(async ([what, plant]) => {
        const dir = folder();
        plant(path.join(dir, 'image.jpg'));
        fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
        const fn = await start(dir, {}, 5000).catch((error: Error) => assert.fail(`${what}: the function did not start: ${error.message}`));
        await assertGoodPage(fn);
        assert.match(String(ignoredLines(fn)[0]?.reason), /not a regular file/, `${what}: the log says what it is:\n${fn.output()}`);
      }),
    );
  });

  test('a sparse 700 MB image.jpg is refused unread: the peak memory stays far below its size', async () => {
    const dir = folder();
    const file = path.join(dir, 'image.jpg');
    fs.writeFileSync(file, good);
    fs.truncateSync(file, 700 * 1024 * 1024);
    fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
    const fn = await start(dir);
    await assertGoodPage(fn);
    const peakKb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${fn.child.pid}/status`, 'utf8'))?.[1]);
    assert.ok(peakKb < 300 * 1024, `peak RSS ${Math.round(peakKb / 1024)} MB`);
    assert.match(String(ignoredLines(fn)[0]?.reason), /over the cap/);
  });

  test('a .ts that is no sane time (2099, twenty digits) gives way to the mtime: the page never shows it, and the stale image is replaced', async () => {
    const stamps = ['2099-01-01T00:00:00.000Z', '99999999999999999999'];
    await allOf(
      stamps.map(async (stamp) => {
        const dir = folder();
        const file = path.join(dir, 'image.jpg');
        fs.writeFileSync(file, good);
        fs.writeFileSync(path.join(dir, '.ts'), stamp);
        const hourAgo = new Date(Date.now() - HOUR_MS);
        fs.utimesSync(file, hourAgo, hourAgo);
        const fn = await start(dir);
        const first = await getPage(fn.url);
        assert.equal(first.status, 200, `.ts ${stamp}: the saved image is served:\n${fn.output()}`);
        assert.ok(imageOf(first.body).equals(good), `.ts ${stamp}: it is the saved image`);
        assert.equal(fetchedTime(first.body), new Date(fs.statSync(file).mtimeMs).toISOString(), `.ts ${stamp}: the page gives the mtime`);
        await eventually(async () => !imageOf((await getPage(fn.url)).body).equals(good), 10_000, `.ts ${stamp}: an hour old, it is replaced`);
        await assertGoodPage(fn);
      }),
    );
  });

  test('a .ts without an offset is read as UTC, whatever time zone the node has', async () => {
    const dir = folder();
    fs.writeFileSync(path.join(dir, 'image.jpg'), good);
    const at = new Date(Math.floor((Date.now() - 120_000) / 1000) * 1000);
    fs.writeFileSync(path.join(dir, '.ts'), at.toISOString().replace('.000Z', ''));
    const fn = await start(dir, { TZ: 'America/New_York' });
    const page = await getPage(fn.url);
    assert.equal(page.status, 200);
    assert.equal(fetchedTime(page.body), at.toISOString());
    assert.ok(imageOf(page.body).equals(good), 'two minutes old: the saved image is fresh and served');
  });

  test('a cold start trusts only bytes a decode has vouched for: an image with no verdict is decoded with sharp first, and its verdict spares the next start', async () => {
    const dir = folder();
    const trace = path.join(dir, 'imports.txt');
    const traced = { NODE_OPTIONS: `--import=${path.join(repoRoot, 'test/fixtures/trace-imports.mjs')}`, TRACE_IMPORTS_FILE: trace };
    const loadedSharp = (): boolean => fs.readFileSync(trace, 'utf8').includes('/node_modules/sharp/');
    // The seed app's volume: an image and its time, no verdict.
    fs.writeFileSync(path.join(dir, 'image.jpg'), good);
    fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
    const downloads = source.downloads;
    const first = await start(dir, traced);
    assert.ok(imageOf((await getPage(first.url)).body).equals(good));
    assert.equal(loadedSharp(), true, 'no verdict: sharp decoded it before it was served');
    assert.ok(fs.existsSync(path.join(dir, '.image.jpg.verified')), 'the verdict is saved beside it');
    await first.kill();
    fs.rmSync(trace);
    const second = await start(dir, traced);
    assert.ok(imageOf((await getPage(second.url)).body).equals(good));
    assert.equal(loadedSharp(), false, 'a verdict for these bytes: sharp is not loaded');
    await second.kill();
    // The bytes change behind the verdict's back: it no longer names them.
    fs.writeFileSync(path.join(dir, 'image.jpg'), cutWithEndMarker(good));
    const third = await start(dir);
    const shown = await assertGoodPage(third);
    assert.ok(!shown.equals(good) && source.downloads > downloads, 'the broken bytes were decoded, refused and replaced by a download');
    assert.equal(imageMimeOf((await getPage(third.url)).body), 'image/jpeg');
  });
});
