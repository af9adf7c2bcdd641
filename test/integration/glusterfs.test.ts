// Replicas on two nodes of one ReadWriteMany volume, on a real network file system: a
// GlusterFS volume (Debian's packages, as root) mounted twice with FUSE is two "nodes",
// each with its own client caches. Two replicas per mount, four in all, share the image,
// the lock and the temp files, as pods on two nodes share one claim. What a local disk
// never shows, this does: a rename on one mount reaches the other mount's cached
// lookups up to a second later.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { createLog } from '../../functions/todo-app/log.ts';
import { Volume } from '../../functions/todo-app/volume.ts';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { glusterUnavailable, startGluster, type GlusterVolume } from '../support/glusterfs.ts';
import { getPage, imageOf } from '../support/page.ts';
import { cannotRunHere } from '../support/skip.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

const TTL_S = 2;
/** proper-lockfile's stale rule in volume.ts: a dead holder's lock is taken over after this. */
const LOCK_STALE_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The download time the page states. */
const fetchedAtOf = (html: string): number => Date.parse(/<time datetime="([^"]+)"/.exec(html)![1]!);

function seed(dir: string, image: Buffer, fetchedAt: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'image.jpg'), image);
  fs.writeFileSync(path.join(dir, '.ts'), new Date(fetchedAt).toISOString());
}

/** One read of a file by name, as volume.ts reads: after a listing, once more after an ESTALE. */
async function readAsReplica(file: string, stale: { count: number }): Promise<Buffer | string> {
  for (let attempt = 0; ; attempt++) {
    await fs.promises.readdir(path.dirname(file)).catch(() => undefined);
    try {
      return await fs.promises.readFile(file);
    } catch (error) {
      const { errno, code } = error as NodeJS.ErrnoException;
      if (errno !== -os.constants.errno.ESTALE || attempt === 1) return String(code);
      stale.count++;
    }
  }
}

/**
 * Reads image.jpg through both mounts every few ms, as a replica would, until stopped: every
 * read must be a whole picture the source sent (or the seeded one), never a torn or foreign one.
 */
function watchFiles(files: string[], known: () => Buffer[]): { stop(): Promise<{ reads: number; stale: number; bad: string[] }> } {
  let reads = 0;
  let running = true;
  const stale = { count: 0 };
  const bad: string[] = [];
  const loop = (async () => {
    while (running) {
      for (const file of files) {
        const bytes = await readAsReplica(file, stale);
        reads++;
        if (typeof bytes === 'string') {
          if (bytes !== 'ENOENT') bad.push(`${file}: ${bytes}`);
        } else if (!known().some((picture) => picture.equals(bytes))) {
          bad.push(`${file}: ${bytes.length} bytes that are no picture the source sent`);
        }
      }
      await sleep(10);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { reads, stale: stale.count, bad };
    },
  };
}

describe('replicas on two nodes of one GlusterFS volume', () => {
  let unavailable: string | undefined;
  let gluster: GlusterVolume | undefined;
  let source: ImageSource;
  let old: Buffer;
  const started: FunctionProcess[] = [];
  let folders = 0;

  before(async () => {
    unavailable = await glusterUnavailable();
    if (unavailable === undefined) gluster = await startGluster();
    source = await startSource({ pictures: 4, width: 480, height: 360, noise: true });
    old = await makeJpeg(99, 480, 360, true);
  });
  after(async () => {
    await Promise.all(started.splice(0).map((fn) => fn.kill('SIGKILL')));
    await source?.close();
    await gluster?.close();
  });

  /** A folder of its own on the volume, as each node sees it. */
  const folder = (): [string, string] => {
    const name = `images-${++folders}`;
    return [path.join(gluster!.mounts[0], name), path.join(gluster!.mounts[1], name)];
  };
  const start = async (dir: string, env: Record<string, string> = {}): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_DIR: dir, IMAGE_URL: source.url, IMAGE_TTL_SECONDS: String(TTL_S), LOG_LEVEL: 'info', ...env });
    started.push(fn);
    return fn;
  };
  const skipped = (t: TestContext): boolean => {
    if (unavailable === undefined) return false;
    cannotRunHere(t, unavailable);
    return true;
  };

  test('an image saved on node A is what node B reads next, though B read the old one a moment before', async (t) => {
    if (skipped(t)) return;
    const [onA, onB] = folder();
    const log = createLog('silent', undefined);
    const [a, b] = [new Volume(onA, log), new Volume(onB, log)];
    await a.prepare();
    const verdict = { rule: 'test' };
    await a.writeImage(old, Date.now() - 60_000, verdict);
    await sleep(1500); // both mounts' caches settle on the first image
    for (let round = 1; round <= 3; round++) {
      const before = await b.readImage(10 * 1024 * 1024);
      const next = source.pictures[round]!;
      const at = Date.now();
      await a.writeImage(next, at, verdict);
      const after = await b.readImage(10 * 1024 * 1024);
      assert.ok(before !== undefined && after !== undefined);
      assert.notEqual(before.fetchedAt, at);
      // GlusterFS' FUSE client keeps a name's lookup and the small file's content for up to a
      // second (entry-timeout, md-cache): without a fresh listing B would read the old time here.
      assert.equal(after.fetchedAt, at, `round ${round}: node B reads the new time at once`);
      assert.ok(after.bytes.equals(next), `round ${round}: node B reads the new picture at once`);
    }
  });

  test("the lock's mkdir is atomic across the two nodes: of two racing for one name, exactly one wins", async (t) => {
    if (skipped(t)) return;
    const [onA, onB] = folder();
    fs.mkdirSync(onA, { recursive: true });
    const rounds = 100;
    const winners: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const name = `.lock-${i}`;
      const tries = await Promise.allSettled([fs.promises.mkdir(path.join(onA, name)), fs.promises.mkdir(path.join(onB, name))]);
      winners.push(tries.filter((r) => r.status === 'fulfilled').length);
      for (const r of tries) if (r.status === 'rejected') assert.equal((r.reason as NodeJS.ErrnoException).code, 'EEXIST');
    }
    assert.deepEqual([...new Set(winners)], [1], `one winner in each of ${rounds} races`);
  });

  test('four replicas, two per node, under load for four TTLs: one download per TTL, no torn or foreign picture on either node', async (t) => {
    if (skipped(t)) return;
    const [onA, onB] = folder();
    seed(onA, old, Date.now());
    const fns = [await start(onA), await start(onA), await start(onB), await start(onB)];
    const known = (): Buffer[] => [old, ...source.pictures];
    const files = watchFiles([path.join(onA, 'image.jpg'), path.join(onB, 'image.jpg')], known);
    source.delayMs = 300; // a waiting answer would show: stale-while-revalidate never waits for it
    const began = Date.now();
    const before = source.downloads;
    const failures: string[] = [];
    const pages = new Map<string, string>();
    let slowest = 0;
    let requests = 0;
    const client = async (k: number): Promise<void> => {
      for (let i = k; Date.now() < began + 4 * TTL_S * 1000; i++) {
        const fn = fns[i % fns.length]!;
        requests++;
        const answer = await getPage(fn.url).catch((error: Error) => ({ status: 0, body: error.message, headers: new Headers(), ms: 0 }));
        slowest = Math.max(slowest, answer.ms);
        if (answer.status !== 200) failures.push(`${fn.port}: ${answer.status} ${answer.body.slice(0, 100)}`);
        else if (!pages.has(answer.headers.get('etag')!)) pages.set(answer.headers.get('etag')!, answer.body);
        await sleep(10);
      }
    };
    try {
      await Promise.all([0, 1, 2, 3, 4, 5].map(client));
    } finally {
      source.delayMs = 0;
    }
    const elapsed = Date.now() - began;
    const downloads = source.downloads - before;
    const { reads, stale, bad } = await files.stop();
    const summary = `${downloads} downloads in ${elapsed} ms (TTL ${TTL_S} s), ${requests} requests, ${pages.size} pages, ${reads} file reads on the two nodes (${stale} ESTALE, read again), slowest answer ${Math.round(slowest)} ms`;
    console.log(`# gluster soak: ${summary}`);

    assert.deepEqual(failures, [], 'every request answered 200');
    assert.deepEqual(bad, [], 'every read of image.jpg on either node is a whole picture the source sent');
    for (const body of pages.values()) assert.ok(known().some((p) => p.equals(imageOf(body))), 'every page shows a picture the source sent');
    assert.ok(slowest < 1000, `stale-while-revalidate: no answer waited for a download (slowest ${Math.round(slowest)} ms)`);
    assert.ok(downloads <= Math.floor(elapsed / (TTL_S * 1000)) + 1, `never more than one download per TTL: ${summary}`);
    assert.ok(downloads >= 2, `the image was replaced as it expired: ${summary}`);
    const times = [...pages.values()].map(fetchedAtOf).sort((x, y) => x - y);
    for (let i = 2; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= TTL_S * 1000, `download ${i} came ${times[i]! - times[i - 1]!} ms after the one before: not within one TTL`);
    const compromised = fns.flatMap((fn) => fn.logs().filter((l) => l.msg === 'refresh lock compromised'));
    assert.deepEqual(compromised, [], 'no replica lost the lock it held');
    for (const fn of fns) assert.equal(fn.child.exitCode, null, 'every replica is alive');
  });

  test('a lock holder on node A killed with SIGKILL mid-download: node B takes the lock over and downloads once, and node A adopts it', async (t) => {
    if (skipped(t)) return;
    const [onA, onB] = folder();
    seed(onA, old, Date.now() - 3600_000);
    // A temp file of an earlier writer killed on node A: an orphan for the next lock holder to remove.
    const orphan = path.join(onA, '.image.jpg.4242.deadbeef.tmp');
    fs.writeFileSync(orphan, old.subarray(0, 1000));
    // A long TTL: once replaced, the picture stays fresh for the rest of the story.
    const slow = { FETCH_TIMEOUT_MS: '30000', IMAGE_TTL_SECONDS: '600' };
    const holder = await start(onA, slow);
    source.delayMs = 60_000;
    const before = source.downloads;
    assert.equal((await getPage(holder.url)).status, 200, 'the stale image is served while the refresh starts');
    await eventually(() => source.downloads === before + 1, 5_000, 'the replica on node A is downloading, holding the lock');
    const nodeB = [await start(onB, slow), await start(onB, slow)];
    for (const fn of nodeB) {
      const answer = await getPage(fn.url);
      assert.ok(imageOf(answer.body).equals(old), 'node B serves the saved image while the lock is held');
    }
    await holder.kill('SIGKILL');
    const killedAt = Date.now();
    source.delayMs = 0;
    const files = watchFiles([path.join(onA, 'image.jpg'), path.join(onB, 'image.jpg')], () => [old, ...source.pictures]);
    let slowest = 0;
    const fresh = await eventually(
      async () => {
        const answers = await Promise.all(nodeB.map((fn) => getPage(fn.url)));
        slowest = Math.max(slowest, ...answers.map((a) => a.ms));
        const images = answers.map((a) => imageOf(a.body));
        return images.every((image) => !image.equals(old) && image.equals(images[0]!)) && images[0];
      },
      LOCK_STALE_MS + 15_000,
      'both replicas on node B serve the new picture',
    );
    const tookOverMs = Date.now() - killedAt;
    const { bad } = await files.stop();
    console.log(`# gluster takeover: node B served the new picture ${tookOverMs} ms after the holder's SIGKILL; slowest answer meanwhile ${Math.round(slowest)} ms`);
    assert.equal(source.downloads - before, 2, "the killed holder's download and one by node B");
    assert.ok(fresh.equals(source.served.at(-1)!), 'the picture node B downloaded');
    assert.ok(slowest < 1000, `node B answered at once while it waited for the lock (slowest ${Math.round(slowest)} ms)`);
    assert.deepEqual(bad, [], 'no torn picture on either node during the takeover');
    assert.equal(fs.existsSync(orphan), false, "the killed writer's temp file was removed by the next lock holder");
    const again = await start(onA, slow);
    assert.ok(imageOf((await getPage(again.url)).body).equals(fresh), 'a new replica on node A serves the picture node B saved');
    assert.equal(source.downloads - before, 2, 'with no download of its own');
    // A listing asks the server; a lookup by name may be a second old on this node.
    await eventually(() => ![...fs.readdirSync(onA), ...fs.readdirSync(onB)].includes('.refresh.lock'), 5_000, 'the lock is released, seen from both nodes');
  });
});
