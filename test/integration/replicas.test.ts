// Replicas on one volume: four real `node dist/index.js` processes share one
// IMAGE_DIR, as the pods of one Deployment share the claim. The story: a herd
// of users arrives just after the image expired and one download serves them
// all; then a minute of steady traffic across thirty expiries wastes none.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { imageOf } from '../support/page.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

const TTL_S = 2;
const REPLICAS = 4;


/** The download time the page states. */
function fetchedAtOf(html: string): number {
  const match = /<time datetime="([^"]+)"/.exec(html);
  assert.ok(match, 'the page states when its image was fetched');
  return Date.parse(match[1]!);
}

/** Full decode by sharp: every pixel, a truncated file fails here. */
async function assertDecodes(bytes: Buffer, what: string): Promise<void> {
  const { info } = await sharp(bytes, { failOn: 'truncated' }).raw().toBuffer({ resolveWithObject: true });
  assert.ok(info.width > 0 && info.height > 0, `${what} decodes`);
}

/** A volume as a replica left it: the image and its download time. */
function seedVolume(dir: string, image: Buffer, fetchedAt: number): void {
  fs.writeFileSync(path.join(dir, 'image.jpg'), image);
  fs.writeFileSync(path.join(dir, '.ts'), new Date(fetchedAt).toISOString());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('replicas on one volume', () => {
  let dir: string;
  let source: ImageSource;
  let old: Buffer;
  let fns: FunctionProcess[] = [];

  const start = async (): Promise<void> => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-replicas-'));
    source = await startSource({ pictures: 4 });
    seedVolume(dir, old, Date.now());
    const env = { IMAGE_DIR: dir, IMAGE_URL: source.url, IMAGE_TTL_SECONDS: String(TTL_S), FETCH_TIMEOUT_MS: '10000', LOG_LEVEL: 'info' };
    fns = await Promise.all(Array.from({ length: REPLICAS }, () => startFunction(env)));
  };

  const stop = async (): Promise<void> => {
    await Promise.all(fns.map((fn) => fn.kill('SIGKILL')));
    fns = [];
    await source?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };

  before(async () => {
    // A picture the source never serves, so the old image is told from every new one.
    old = await makeJpeg(99);
  });
  after(stop);

  test('a herd of 100 requests just after the TTL: one download, and nobody waits for it', async () => {
    await start();
    try {
      const seededAt = fetchedAtOf(await (await fetch(fns[0]!.url)).text());
      for (const fn of fns) assert.deepEqual(imageOf(await (await fetch(fn.url)).text()), old, 'every replica adopts the saved image');
      assert.equal(source.downloads, 0, 'a fresh image on the volume is not downloaded again');

      await sleep(Math.max(0, seededAt + TTL_S * 1000 + 300 - Date.now()));
      source.delayMs = 1500;
      const answers = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const started = performance.now();
          const res = await fetch(fns[i % REPLICAS]!.url);
          const body = await res.text();
          return { status: res.status, body, ms: performance.now() - started };
        }),
      );

      const slowest = Math.max(...answers.map((a) => a.ms));
      console.log(`# herd: 100 answers, the slowest in ${Math.round(slowest)} ms`);
      for (const [i, answer] of answers.entries()) {
        assert.equal(answer.status, 200, `answer ${i} is 200`);
        // The download takes 1.5 s: an answer that carried the new picture waited for it.
        assert.deepEqual(imageOf(answer.body), old, `answer ${i} is the old image, served while the refresh runs`);
      }
      await assertDecodes(imageOf(answers[0]!.body), 'the served image');
      // Stale-while-revalidate makes this true by design: the answer never awaits the 1.5 s download.
      assert.ok(slowest < 1000, `the slowest of 100 answers took ${Math.round(slowest)} ms, under the 1.5 s download`);

      const latest = await eventually(
        async () => {
          const pages = await Promise.all(fns.map(async (fn) => imageOf(await (await fetch(fn.url)).text())));
          return pages.every((image) => !image.equals(old)) && pages;
        },
        10_000,
        'all four replicas serve a new picture',
      );
      assert.equal(source.downloads, 1, 'exactly one download for the herd across four replicas');
      const fresh = source.served[0]!;
      for (const image of latest) assert.deepEqual(image, fresh, 'every replica serves the one downloaded picture');
      await assertDecodes(fresh, 'the new picture');
      for (const fn of fns) assert.equal(fn.child.exitCode, null, 'every replica is alive');
    } finally {
      await stop();
    }
  });

  test('a minute of steady load over four replicas: no failed request, one download per TTL window', async () => {
    await start();
    const SOAK_MS = 60_000;
    const CLIENTS = 6;
    const PAUSE_MS = 10;
    try {
      const seededAt = fetchedAtOf(await (await fetch(fns[0]!.url)).text());
      const failures: string[] = [];
      /** One body per distinct page (ETag): each is checked once, not 10 000 times. */
      const pages = new Map<string, string>();
      let requests = 0;
      const began = Date.now();
      const deadline = began + SOAK_MS;
      let next = 0;
      const client = async (): Promise<void> => {
        while (Date.now() < deadline) {
          const fn = fns[next++ % REPLICAS]!;
          requests++;
          try {
            const res = await fetch(fn.url);
            const body = await res.text();
            const etag = res.headers.get('etag') ?? '';
            if (res.status !== 200 || etag === '') failures.push(`${fn.port}: ${res.status}`);
            else if (!pages.has(etag)) pages.set(etag, body);
          } catch (error) {
            failures.push(`${fn.port}: ${(error as Error).message}`);
          }
          await sleep(PAUSE_MS);
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));
      const elapsed = Date.now() - seededAt;
      const downloads = source.downloads;

      assert.deepEqual(failures, [], `no failed request out of ${requests}`);
      for (const fn of fns) assert.equal(fn.child.exitCode, null, 'every replica is alive');

      const known = [old, ...source.pictures];
      const timeline: number[] = [];
      for (const body of pages.values()) {
        const image = imageOf(body);
        assert.ok(
          known.some((picture) => picture.equals(image)),
          'every served image is byte-equal to a picture the source sent',
        );
        await assertDecodes(image, 'every served image');
        timeline.push(fetchedAtOf(body));
      }
      timeline.sort((a, b) => a - b);

      // Each window runs from one download time to the next. A refresh starts only
      // once the image is stale, so no window is shorter than the TTL; it then
      // lasts the TTL plus e, the wait for the first request after expiry (at most
      // the clients' pause), plus r, the refresh itself (lock, download, decode).
      // The 1 s disk re-check does not lengthen it: with a TTL above 1 s every
      // replica re-reads `.ts` as soon as its copy expires, and the lock's re-check
      // turns a second refresh into an adoption, not a download. So the expected
      // count is elapsed / (TTL + e + r), with e + r taken from the log of each
      // refresh: from 'image stale' in the replica that downloaded to its 'download done'.
      const overheads: number[] = [];
      for (const fn of fns) {
        let staleAt: number | undefined;
        for (const line of fn.logs()) {
          if (line.msg === 'image stale' || line.msg === 'image missing') staleAt = line.time as number;
          if (line.msg === 'download done' && staleAt !== undefined) {
            overheads.push((line.time as number) - staleAt + PAUSE_MS / 2);
            staleAt = undefined;
          }
          if (line.msg === 'refresh failed') staleAt = undefined;
        }
      }
      const overhead = overheads.reduce((a, b) => a + b, 0) / Math.max(1, overheads.length);
      const windows = elapsed / (TTL_S * 1000 + overhead);
      const summary = `${downloads} downloads in ${elapsed} ms, TTL ${TTL_S} s, mean refresh overhead ${Math.round(overhead)} ms => ${windows.toFixed(2)} windows; ${requests} requests`;
      console.log(`# soak: ${summary}`);
      assert.ok(Math.abs(downloads - windows) <= 1, `downloads equal the TTL windows ±1: ${summary}`);
      assert.ok(downloads <= Math.floor(elapsed / (TTL_S * 1000)) + 1, `never more than one download per TTL: ${summary}`);

      // Every download became a window that users saw, none was wasted on a second replica.
      assert.ok(timeline.length >= downloads, `${timeline.length} distinct pages seen for ${downloads} downloads`);
      for (let i = 1; i < timeline.length; i++) {
        const gap = timeline[i]! - timeline[i - 1]!;
        assert.ok(gap >= TTL_S * 1000, `window ${i} lasted ${gap} ms, not less than the TTL`);
        // Generous: TTL + pause + 1 s disk re-check + a slow refresh on a busy two-core machine.
        assert.ok(gap <= TTL_S * 1000 + 4000, `window ${i} lasted ${gap} ms: no expiry was missed`);
      }
    } finally {
      await stop();
    }
  });
});
