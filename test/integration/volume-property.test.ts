// A property of the function, checked on random volumes: whatever `image.jpg`,
// `.ts` and the files beside them hold, and whatever the source does, every
// answer is a page whose picture decodes strictly, or a 503 after a download
// was tried; and once the source is good, a good picture follows within the
// back-off. The volumes are planted for real into folders that real
// `node dist/index.js` processes read, across restarts with and without
// IMAGE_WIDTH, a few processes side by side (several cases per process start).
//
// Seeded: PROPERTY_SEED=<n> replays a run (the seed is printed when a case
// fails), PROPERTY_CASES and PROPERTY_LANES size it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { cutWithEndMarker, decodesStrictly, withClaimedSize } from '../support/badPictures.ts';
import { startFunction, type FunctionProcess } from '../support/fn.ts';
import { imageMimeOf, imageOf } from '../support/page.ts';
import { makeJpeg, startSource, type ImageSource, type SourceMode } from '../support/source.ts';

const SEED = Number(process.env.PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 32));
const CASES = Number(process.env.PROPERTY_CASES ?? 300);
const LANES = Number(process.env.PROPERTY_LANES ?? 6);
const MAX_IMAGE_BYTES = 2_000_000;
const FETCH_TIMEOUT_MS = 2000;
const TTL_MS = 1000;
const EARLIEST = Date.UTC(2000, 0, 1);
const SKEW_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;

/** mulberry32: small, fast, and the same sequence on every machine for a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = ReturnType<typeof prng>;
const int = (random: Random, below: number): number => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;
const bytes = (random: Random, length: number): Buffer => Buffer.from(Array.from({ length }, () => int(random, 256)));

interface Goods {
  jpegs: Buffer[];
  png: Buffer;
}

/** What `image.jpg` becomes: a description for the failure message and the way to plant it. */
type Plant = [string, (file: string) => void];

const mkfifo = (file: string): void => {
  const made = spawnSync('mkfifo', [file], { encoding: 'utf8' });
  if (made.status !== 0) throw Object.assign(new Error(made.stderr), { code: /File exists/.test(made.stderr) ? 'EEXIST' : 'EMKFIFO' });
};

/** Plants `plant` at `file`; a running function may write the same name in between, so it is tried again. */
function plantAt(file: string, plant: Plant): void {
  for (let attempt = 0; ; attempt++) {
    fs.rmSync(file, { recursive: true, force: true });
    try {
      plant[1](file);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 5) throw error;
    }
  }
}

function imagePlant(random: Random, goods: Goods): Plant {
  const good = pick(random, goods.jpegs);
  const write = (what: string, content: Buffer): Plant => [what, (file) => fs.writeFileSync(file, content)];
  switch (int(random, 13)) {
    case 0:
      return write('a good JPEG', good);
    case 1:
      return write('a good PNG', goods.png);
    case 2: {
      const flipped = Buffer.from(good);
      const flips = 1 + int(random, 20);
      for (let i = 0; i < flips; i++) {
        const at = int(random, flipped.length);
        flipped[at] = flipped[at]! ^ (1 << int(random, 8));
      }
      return write(`a good JPEG with ${flips} bits flipped`, flipped);
    }
    case 3: {
      const at = int(random, good.length);
      return write(`a JPEG cut at ${at} of ${good.length}`, good.subarray(0, at));
    }
    case 4: {
      const extra = 1 + int(random, 5000);
      return write(`a good JPEG and ${extra} bytes of garbage`, Buffer.concat([good, bytes(random, extra)]));
    }
    case 5: {
      const keep = 0.05 + random() * 0.9;
      return write(`a JPEG cut at ${Math.round(keep * 100)}% with an end marker`, cutWithEndMarker(good, keep));
    }
    case 6: {
      const length = int(random, 50_000);
      return write(`${length} random bytes`, bytes(random, length));
    }
    case 7:
      return write('an empty file', Buffer.alloc(0));
    case 8:
      return write('a JPEG claiming 40000 x 40000', withClaimedSize(good, 40_000, 40_000));
    case 9: {
      const size = MAX_IMAGE_BYTES + 1 + int(random, 1 << 30);
      return [
        `a sparse file of ${size} bytes`,
        (file) => {
          fs.writeFileSync(file, good);
          fs.truncateSync(file, size);
        },
      ];
    }
    case 10:
      return ['a FIFO', mkfifo];
    case 11:
      return ['a folder', (file) => fs.mkdirSync(file)];
    default:
      return random() < 0.5 ? ['a link to /dev/zero', (file) => fs.symlinkSync('/dev/zero', file)] : ['nothing', () => undefined];
  }
}

function stampPlant(random: Random, now: number): Plant {
  const write = (what: string, text: string): Plant => [`.ts ${what} ${JSON.stringify(text.slice(0, 40))}`, (file) => fs.writeFileSync(file, text)];
  const iso = (ms: number): string => new Date(ms).toISOString();
  switch (int(random, 14)) {
    case 0:
      return write('now', iso(now));
    case 1:
      return write('minutes ago', iso(now - int(random, 3600_000)));
    case 2:
      return write('within the clock skew', iso(now + int(random, SKEW_MS)));
    case 3:
      return write('in the future', iso(now + SKEW_MS + 1 + int(random, 3650 * DAY_MS)));
    case 4:
      return write('ancient', iso(int(random, EARLIEST)));
    case 5:
      return write('garbage', pick(random, ['yesterday', 'NaN', '2026-02-30T00:00:00Z', '-1', '1e13', 'Z']));
    case 6:
      return write('huge digits', '9'.repeat(14 + int(random, 30)));
    case 7:
      return write('ISO without offset', iso(now - int(random, 3600_000)).replace('Z', ''));
    case 8: {
      const hours = int(random, 27) - 13;
      const local = new Date(now - int(random, 3600_000) + hours * 3600_000).toISOString().replace('Z', '');
      return write('ISO with offset', `${local}${hours < 0 ? '-' : '+'}${String(Math.abs(hours)).padStart(2, '0')}:00`);
    }
    case 9:
      return write('epoch ms', String(now - int(random, 3600_000)));
    case 10:
      return write('empty', '');
    case 11:
      return write('random bytes', bytes(random, int(random, 3000)).toString('latin1'));
    case 12:
      return ['.ts a FIFO', mkfifo];
    default:
      return random() < 0.5 ? ['.ts a folder', (file) => fs.mkdirSync(file)] : ['no .ts', () => undefined];
  }
}

interface Lane {
  dir: string;
  source: ImageSource;
  fn: FunctionProcess | undefined;
  width: number | undefined;
}

describe(`random volumes (PROPERTY_SEED=${SEED}, ${CASES} cases, ${LANES} lanes)`, () => {
  let goods: Goods;
  const lanes: Lane[] = [];

  before(async () => {
    const jpegs = await Promise.all([1, 2, 3].map((seed) => makeJpeg(seed * 11, 160 + seed * 40, 120 + seed * 20, true)));
    goods = { jpegs, png: await sharp(jpegs[0]!).png().toBuffer() };
    for (let i = 0; i < LANES; i++) {
      const source = await startSource({ width: 200, height: 150, noise: true, pictures: 3 });
      lanes.push({ dir: fs.mkdtempSync(path.join(os.tmpdir(), `todo-property-${i}-`)), source, fn: undefined, width: undefined });
    }
  });
  after(async () => {
    for (const lane of lanes) {
      await lane.fn?.kill();
      await lane.source.close();
      fs.rmSync(lane.dir, { recursive: true, force: true });
    }
  });

  /** One answer, bounded: a hang past the fetch bound is a failure of its own. */
  async function ask(fn: FunctionProcess): Promise<{ status: number; body: string; retryAfter: number }> {
    const response = await fetch(fn.url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS + 5000) });
    return { status: response.status, body: await response.text(), retryAfter: Number(response.headers.get('retry-after')) };
  }

  /** The page is good: its picture decodes strictly, is labelled with its real type, fits IMAGE_WIDTH, and its time is sane. */
  async function assertGood(body: string, lane: Lane): Promise<void> {
    const picture = imageOf(body);
    assert.ok(await decodesStrictly(picture), `the page carries a picture that does not decode (${picture.length} bytes)`);
    const meta = await sharp(picture).metadata();
    const format = meta.format === 'heif' ? 'avif' : meta.format;
    assert.equal(imageMimeOf(body), `image/${format}`, 'the label is the decoded type');
    if (lane.width !== undefined) assert.ok(meta.width! <= lane.width, `${meta.width} px wide, IMAGE_WIDTH=${lane.width}`);
    const fetched = Date.parse(/fetched <time datetime="([^"]+)">/.exec(body)?.[1] ?? '');
    assert.ok(fetched >= EARLIEST && fetched <= Date.now() + SKEW_MS, `the page says fetched ${new Date(fetched).toISOString()}`);
  }

  /** Plants one random volume into the lane's folder and (re)starts its process when the case says so. */
  async function plant(lane: Lane, random: Random, extras: string[]): Promise<{ restart: boolean; mode: SourceMode }> {
    const now = Date.now();
    const image = imagePlant(random, goods);
    const stamp = stampPlant(random, now);
    const restart = lane.fn === undefined || random() < 0.5;
    const width = restart ? (random() < 0.5 ? undefined : 32 + int(random, 400)) : lane.width;
    const mode: SourceMode = pick(random, ['ok', 'ok', 'ok', 'ok', 'ok', 'error', 'corrupt', 'not-image']);
    extras.push(image[0], stamp[0], `${restart ? 'restart' : 'running'}, IMAGE_WIDTH=${width ?? 'unset'}, source ${mode}`);

    // SIGTERM, as Kubernetes restarts a pod: the refresh lock is released (kill -9 and the lock: faults-crash.test.ts).
    if (restart) await lane.fn?.kill('SIGTERM');
    const imageFile = path.join(lane.dir, 'image.jpg');
    plantAt(imageFile, image);
    plantAt(path.join(lane.dir, '.ts'), stamp);
    const info = fs.lstatSync(imageFile, { throwIfNoEntry: false });
    if (info?.isFile() && random() < 0.3) {
      const mtime = new Date(pick(random, [now + SKEW_MS + DAY_MS, now - 3650 * DAY_MS, int(random, EARLIEST), now - int(random, 3600_000)]));
      fs.utimesSync(imageFile, mtime, mtime);
      extras.push(`mtime ${mtime.toISOString()}`);
    }
    if (random() < 0.2) {
      fs.writeFileSync(path.join(lane.dir, '.image.jpg.verified'), random() < 0.5 ? bytes(random, 200) : JSON.stringify({ sha256: 'f'.repeat(64), mime: 'image/jpeg' }));
      extras.push('a garbage verdict');
    }
    if (width !== undefined && info?.isFile() && info.size < MAX_IMAGE_BYTES && random() < 0.3) {
      const hash = createHash('sha256').update(fs.readFileSync(imageFile)).digest('hex');
      fs.writeFileSync(path.join(lane.dir, `variant-${width}w-${hash.slice(0, 16)}.jpg`), cutWithEndMarker(pick(random, goods.jpegs)));
      extras.push('a broken resized copy');
    }
    lane.source.mode = mode;
    if (restart) {
      const env: Record<string, string> = {
        IMAGE_URL: lane.source.url,
        IMAGE_DIR: lane.dir,
        IMAGE_TTL_SECONDS: String(TTL_MS / 1000),
        FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS),
        MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
        LOG_LEVEL: 'warn',
      };
      if (width !== undefined) env.IMAGE_WIDTH = String(width);
      lane.fn = await startFunction(env, { readyTimeoutMs: 10_000 });
      lane.width = width;
    } else {
      // Past the TTL the running process looks at the volume again.
      await new Promise((r) => setTimeout(r, TTL_MS + 50));
    }
    return { restart, mode };
  }

  /** One case: plant, ask, then make the source good and ask until the good picture is back. Returns its story. */
  async function runCase(lane: Lane, index: number): Promise<string> {
    const random = prng(SEED + index * 0x9e3779b9);
    const story: string[] = [];
    const requestsBefore = lane.source.requests;
    try {
      const { restart } = await plant(lane, random, story);
      const fn = lane.fn!;
      const answer = await ask(fn);
      assert.equal(fn.child.exitCode, null, 'the process lives');
      if (answer.status === 200) {
        await assertGood(answer.body, lane);
      } else {
        assert.equal(answer.status, 503, `a page or a 503, not ${answer.status}`);
        assert.ok(answer.retryAfter >= 1, '503 with Retry-After');
        if (restart) assert.ok(lane.source.requests > requestsBefore, 'a 503 only after a download was tried');
      }
      lane.source.mode = 'ok';
      const deadline = Date.now() + (answer.status === 503 ? answer.retryAfter * 1000 : 0) + FETCH_TIMEOUT_MS + 3000;
      for (;;) {
        const next = await ask(fn);
        if (next.status === 200) {
          await assertGood(next.body, lane);
          break;
        }
        assert.ok(Date.now() < deadline, `still ${next.status} after the back-off with a good source`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(fn.child.exitCode, null, 'the process lives');
      return story.join('; ');
    } catch (error) {
      const tail = lane.fn?.output().split('\n').slice(-15).join('\n');
      throw new Error(`PROPERTY_SEED=${SEED} case ${index} (${story.join('; ')}): ${(error as Error).message}\n--- the function's last lines ---\n${tail}`);
    }
  }

  test('every answer is a picture that decodes, or a 503 after a download was tried; a good source brings a good picture back', async (t) => {
    const started = performance.now();
    const done: string[] = [];
    let failed = false;
    // The first failure stops every lane, so no lane starts a process after the cleanup.
    const runs = await Promise.allSettled(
      lanes.map(async (lane, l) => {
        for (let index = l; index < CASES && !failed; index += LANES) {
          done.push(await runCase(lane, index).catch((error: Error) => ((failed = true), Promise.reject(error))));
        }
      }),
    );
    const failure = runs.find((run): run is PromiseRejectedResult => run.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    assert.equal(done.length, CASES);
    const restarts = done.filter((story) => story.includes('restart')).length;
    t.diagnostic(`${CASES} cases (${restarts} with a restart) in ${Math.round((performance.now() - started) / 1000)} s, PROPERTY_SEED=${SEED}`);
  });
});
