// What caches in front are told, from several replicas of one volume: a cache may ask
// any replica, so two replicas that serve the same image must name it the same way
// (ETag, Last-Modified) and count the same seconds left (Cache-Control), whichever of
// them downloaded it, adopted it from the volume, or started later and read it there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage, type Answer } from '../support/page.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const TTL_S = 4;
/** The headers a cache stores and compares; Date is the moment of each answer, the rest must match. */
const NAMING = ['etag', 'last-modified', 'cache-control', 'content-length', 'content-type', 'content-security-policy'];

/** The same request to every replica, again until all answers carry the same Date (the same second). */
async function sameSecond(urls: string[], init?: RequestInit): Promise<Answer[]> {
  for (;;) {
    const answers = await Promise.all(urls.map((url) => getPage(url, init)));
    if (new Set(answers.map((a) => a.headers.get('date'))).size === 1) return answers;
  }
}

function naming(answer: Answer): Record<string, string | null> {
  return Object.fromEntries(NAMING.map((name) => [name, answer.headers.get(name)]));
}

describe('cache headers on replicas of one volume', () => {
  let source: ImageSource;
  let dir: string;
  const started: FunctionProcess[] = [];
  const start = async (env: Record<string, string> = {}): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, IMAGE_TTL_SECONDS: String(TTL_S), LOG_LEVEL: 'info', ...env });
    started.push(fn);
    return fn;
  };

  beforeEach(async () => {
    source = await startSource({ width: 640, height: 480 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-headers-'));
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((fn) => fn.kill()));
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, env] of [
    ['the original picture', {}],
    ['IMAGE_WIDTH=320, the resized copy kept on the volume', { IMAGE_WIDTH: '320' }],
  ] as const) {
    it(`${what}: the replica that downloaded, one that adopted and one started later say the same, to the second`, async () => {
      const [a, b] = [await start(env), await start(env)];
      const first = await getPage(a.url); // a downloads
      assert.equal(first.status, 200);
      assert.equal(source.downloads, 1);
      const c = await start(env); // reads the volume at its start
      const answers = await sameSecond([a.url, b.url, c.url]);
      assert.equal(source.downloads, 1, 'b and c adopted the image from the volume');
      for (const answer of answers) assert.equal(answer.status, 200);
      assert.deepEqual(answers.map(naming), [naming(answers[0]!), naming(answers[0]!), naming(answers[0]!)]);
      assert.equal(answers[1]!.body, answers[0]!.body, 'the same bytes');
      assert.equal(answers[2]!.body, answers[0]!.body, 'the same bytes');
      const maxAge = Number(/^max-age=(\d+),/.exec(answers[0]!.headers.get('cache-control')!)?.[1]);
      const expiresAt = Date.parse(answers[0]!.headers.get('last-modified')!) + TTL_S * 1000;
      assert.ok(maxAge >= 1 && maxAge <= TTL_S, `max-age=${maxAge} within the TTL of ${TTL_S} s`);
      // Date is the answer's second; the stated lifetime ends no later than the image's expiry (1 s of Last-Modified's rounding aside).
      assert.ok(Date.parse(answers[0]!.headers.get('date')!) + maxAge * 1000 <= expiresAt + 1000, 'max-age ends by the expiry');

      // A cache that stored the page from one replica revalidates at another: 304, with the same lifetime.
      const etag = answers[0]!.headers.get('etag')!;
      const revalidated = await sameSecond([a.url, b.url, c.url], { headers: { 'If-None-Match': etag } });
      for (const answer of revalidated) {
        assert.equal(answer.status, 304);
        assert.equal(answer.headers.get('etag'), etag);
        assert.equal(answer.headers.get('last-modified'), answers[0]!.headers.get('last-modified'));
      }
      assert.equal(new Set(revalidated.map((r) => r.headers.get('cache-control'))).size, 1, 'one Cache-Control from all three');
    });
  }

  it('past the TTL, while one replica refreshes, every replica asks caches to check again within a second', async () => {
    const [a, b] = [await start(), await start()];
    await getPage(a.url);
    await getPage(b.url);
    source.delayMs = 1500; // the refresh takes a while
    await new Promise((r) => setTimeout(r, TTL_S * 1000 + 100));
    const stale = await sameSecond([a.url, b.url]);
    assert.deepEqual(naming(stale[1]!), naming(stale[0]!));
    assert.equal(stale[0]!.headers.get('cache-control'), 'max-age=1, stale-while-revalidate=10, stale-if-error=3600');
  });
});
