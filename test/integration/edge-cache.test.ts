// A real cache in front of the replicas: Debian's nginx with the configuration users apply
// (k8s-volumes/cache/configmap.yaml), in front of three replicas on one volume, read by
// many clients at once. The story: the cache keeps the page for as long as the function
// says, so the replicas see a few requests per TTL however many readers there are; no
// reader gets a page older than the TTL plus the stated stale window; while the source
// fails, and even while no replica answers, readers keep getting the last page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { nginxUnavailable, startEdgeCache, type EdgeCache } from '../support/edge-cache.ts';
import { startFunction, type FunctionProcess } from '../support/fn.ts';
import { cannotRunHere } from '../support/skip.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const TTL_S = 3;
/** The function's default stale-while-revalidate (caching.ts), which the replicas state here. */
const STALE_S = 10;
const CLIENTS = 24;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Read {
  status: number;
  /** When the answer's last byte arrived. */
  at: number;
  /** The image's download time, as the page states it. */
  fetchedAt: number;
  cache: string;
}

/** CLIENTS readers in a loop against the cache for `ms`, each on its own kept-alive connection. */
async function readFor(url: string, ms: number): Promise<Read[]> {
  const reads: Read[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) {
        try {
          const res = await fetch(url);
          const body = await res.text();
          const stated = /<time datetime="([^"]+)"/.exec(body)?.[1];
          reads.push({ status: res.status, at: Date.now(), fetchedAt: stated ? Date.parse(stated) : NaN, cache: res.headers.get('x-cache-status') ?? '' });
        } catch (error) {
          reads.push({ status: 0, at: Date.now(), fetchedAt: NaN, cache: (error as Error).message });
        }
        await sleep(2);
      }
    }),
  );
  return reads;
}

/** The longest refresh of any replica so far, from its 'image stale' line to its 'download done', in ms. */
function slowestRefresh(fns: FunctionProcess[]): number {
  let slowest = 0;
  for (const fn of fns) {
    let staleAt: number | undefined;
    for (const line of fn.logs()) {
      if (line.msg === 'image stale' || line.msg === 'image missing') staleAt = line.time as number;
      if (line.msg === 'download done' && staleAt !== undefined) slowest = Math.max(slowest, (line.time as number) - staleAt);
    }
  }
  return slowest;
}

/** The requests that reached the replicas: their LOG_LEVEL=debug `request` lines for the page. */
const requestsAt = (fns: FunctionProcess[]): number => fns.reduce((n, fn) => n + fn.logs().filter((l) => l.msg === 'request' && l.path === '/').length, 0);

const errorsOf = (reads: Read[]): string[] => reads.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.cache}`);
const oldest = (reads: Read[]): number => Math.max(...reads.map((r) => r.at - r.fetchedAt));

describe('an edge cache (nginx) in front of three replicas on one volume', () => {
  let unavailable: string | undefined;
  let source: ImageSource;
  let dir: string;
  let fns: FunctionProcess[] = [];
  let edge: EdgeCache | undefined;
  const others: Array<{ close(): Promise<unknown> }> = [];

  before(async () => {
    unavailable = nginxUnavailable();
    if (unavailable !== undefined) return;
    source = await startSource({ pictures: 4 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-edge-volume-'));
    const env = { IMAGE_DIR: dir, IMAGE_URL: source.url, IMAGE_TTL_SECONDS: String(TTL_S), LOG_LEVEL: 'debug' };
    fns = await Promise.all([1, 2, 3].map(() => startFunction(env)));
    edge = await startEdgeCache(fns.map((fn) => `127.0.0.1:${fn.port}`));
  });
  after(async () => {
    await edge?.close();
    await Promise.all([...fns.map((fn) => fn.kill()), ...others.map((o) => o.close())]);
    await source?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const skipped = (t: TestContext): boolean => {
    if (unavailable === undefined) return false;
    cannotRunHere(t, unavailable);
    return true;
  };

  test(`${CLIENTS} clients for three TTLs: a few requests per TTL reach the replicas, no page older than the TTL and the stale window`, async (t) => {
    if (skipped(t)) return;
    const before = requestsAt(fns);
    const downloadsBefore = source.downloads;
    const began = Date.now();
    const reads = await readFor(`${edge!.url}/`, 3 * TTL_S * 1000 + 500);
    const ttls = (Date.now() - began) / (TTL_S * 1000);
    const reached = requestsAt(fns) - before;
    const perTtl = reached / ttls;
    const refresh = slowestRefresh(fns);
    const figures = `${reads.length} reads, ${reached} reached the replicas in ${ttls.toFixed(2)} TTLs: ${perTtl.toFixed(2)} per TTL; ${source.downloads - downloadsBefore} downloads; the oldest page read was ${oldest(reads)} ms old (TTL ${TTL_S} s, slowest refresh ${refresh} ms)`;
    console.log(`# edge cache: ${figures}`);
    assert.deepEqual(errorsOf(reads), [], 'every read answered 200');
    assert.ok(oldest(reads) <= (TTL_S + STALE_S) * 1000, `no page older than the TTL and the stated stale-while-revalidate: ${figures}`);
    // What a page's age is made of behind nginx, which keeps a stored answer through the second
    // its max-age ends in (up to max-age + 1 s after it stored it). Fetched at F, the page is first
    // stored with max-age TTL - 1 (whole seconds left, a moment after F), so nginx asks again by
    // F + TTL. Asked just before F + TTL, the function still calls it fresh and says max-age=1:
    // kept up to 2 s more, to F + TTL + 2. Asked then, it is stale: the function starts its
    // refresh and gives the old page with max-age=1 again, and from F + TTL + 2 + the refresh
    // nginx has at most 2 s to ask once more: TTL + 4 s + the refresh, and the reads' own latency.
    assert.ok(oldest(reads) <= (TTL_S + 4) * 1000 + refresh + 500, `no page older than the TTL + 4 s + the refresh: ${figures}`);
    // Per TTL: the expiry's revalidation, the recheck a second later while the function's
    // own refresh runs (max-age=1), the first miss; each collapsed to one request by the cache.
    assert.ok(perTtl <= 4, `at most four requests per TTL reach the replicas, for ${reads.length} reads: ${figures}`);
    assert.ok(source.downloads - downloadsBefore <= Math.ceil(ttls) + 1, `one download per TTL: ${figures}`);
    assert.ok(reads.filter((r) => r.cache === 'HIT').length / reads.length > 0.95, 'the cache answered nearly all reads itself');
  });

  test('a browser revalidates through the cache: a 304 from the cache, and Cache-Control no-cache below nginx, which sends no Age', async (t) => {
    if (skipped(t)) return;
    const page = await fetch(`${edge!.url}/`);
    await page.arrayBuffer();
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.equal(page.headers.get('age'), null, "nginx's stored answer carries no Age");
    const direct = await fetch(fns[0]!.url);
    await direct.arrayBuffer();
    assert.match(direct.headers.get('cache-control')!, /^max-age=\d+, stale-while-revalidate=10, stale-if-error=3600$/);
    const before = requestsAt(fns);
    const again = await fetch(`${edge!.url}/`, { headers: { 'If-None-Match': page.headers.get('etag')! } });
    if (again.status === 304) assert.equal(again.headers.get('etag'), page.headers.get('etag'));
    else assert.equal(again.status, 200, 'the image changed between the two requests'); // a new ETag in between: then 200
    assert.ok(requestsAt(fns) - before <= 1, 'the cache answered the conditional request');
  });

  test('the source fails for two TTLs: no reader gets an error, and the replicas are asked once every second or two', async (t) => {
    if (skipped(t)) return;
    const before = requestsAt(fns);
    source.mode = 'error';
    let reads: Read[];
    try {
      reads = await readFor(`${edge!.url}/`, 2 * TTL_S * 1000);
    } finally {
      source.mode = 'ok';
    }
    const reached = requestsAt(fns) - before;
    const failed = fns.flatMap((fn) => fn.logs().filter((l) => l.msg === 'refresh failed'));
    console.log(`# edge cache, source failing: ${reads.length} reads, ${reached} reached the replicas in ${2 * TTL_S} s, ${failed.length} failed refreshes so far; oldest page ${oldest(reads)} ms`);
    assert.deepEqual(errorsOf(reads), [], 'every read answered 200 with the last page');
    assert.ok(failed.length > 0, 'the replicas did try the source, and it failed');
    assert.ok(reached <= 2 * TTL_S * 2 + 4, `${reached} requests reached the replicas in ${2 * TTL_S} s: once every second or two`);
  });

  test('no replica answers at all: the cache keeps giving out the last page (stale-if-error)', async (t) => {
    if (skipped(t)) return;
    await Promise.all(fns.map((fn) => fn.kill('SIGKILL')));
    const reads = await readFor(`${edge!.url}/`, TTL_S * 1000 + 1000);
    const kinds = [...new Set(reads.map((r) => r.cache))].join(', ');
    console.log(`# edge cache, every replica killed: ${reads.length} reads (${kinds}), oldest page ${oldest(reads)} ms`);
    assert.deepEqual(errorsOf(reads), [], 'every read answered 200 with the last page');
    assert.ok(reads.some((r) => r.cache === 'STALE'), 'past its max-age the page came from the cache, stale');
  });

  test('no image yet and the source down: the 503 is kept by the cache for its Retry-After, never longer', async (t) => {
    if (skipped(t)) return;
    const down = await startSource({ pictures: 1 });
    others.push(down);
    down.mode = 'error';
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-edge-empty-'));
    others.push({ close: async () => fs.rmSync(empty, { recursive: true, force: true }) });
    const fn = await startFunction({ IMAGE_DIR: empty, IMAGE_URL: down.url, FETCH_TIMEOUT_MS: '1000', LOG_LEVEL: 'debug' });
    others.push({ close: () => fn.kill() });
    const cache = await startEdgeCache([`127.0.0.1:${fn.port}`]);
    others.push(cache);

    // The first failures back off for 1 s, then 2 s: a 503 with Retry-After 1 is not stored at all.
    for (;;) {
      const direct = await fetch(fn.url);
      await direct.arrayBuffer();
      const wait = Number(direct.headers.get('retry-after'));
      if (wait >= 3) break;
      await sleep(wait * 1000 + 100);
    }
    const first = await fetch(`${cache.url}/`);
    await first.arrayBuffer();
    const madeAt = Date.now();
    assert.equal(first.status, 503);
    const retryAfter = Number(first.headers.get('retry-after'));
    assert.ok(retryAfter >= 2, `Retry-After ${retryAfter}`);
    const answers: Array<{ at: number; status: number; cache: string }> = [];
    while (Date.now() < madeAt + (retryAfter + 1.5) * 1000) {
      const res = await fetch(`${cache.url}/`);
      await res.arrayBuffer();
      answers.push({ at: Date.now(), status: res.status, cache: res.headers.get('x-cache-status') ?? '' });
      await sleep(50);
    }
    const hits = answers.filter((a) => a.cache === 'HIT');
    console.log(`# edge cache, 503: Retry-After ${retryAfter} s; ${hits.length} of ${answers.length} answers from the cache, the last ${hits.length ? hits.at(-1)!.at - madeAt : 0} ms after the first 503`);
    assert.ok(hits.length > 0, 'the herd was answered from the cache');
    for (const hit of hits) assert.ok(hit.at - madeAt <= retryAfter * 1000 + 200, `a stored 503 given out ${hit.at - madeAt} ms after it was made, past its Retry-After of ${retryAfter} s`);
    assert.ok(answers.some((a) => a.cache !== 'HIT' && a.at - madeAt > retryAfter * 1000), 'after its Retry-After the 503 was asked for again');
  });
});
