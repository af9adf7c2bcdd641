// The pictures that took the function down (issue 15), and a few more, tried on
// the real function inside a real memory cgroup with stack.yml's limit (256 MiB),
// from the source and planted on the volume without a verdict: the kernel's own
// counters say whether its OOM killer had to step in. And the decode marks: a
// process killed for real (kill -9) in the middle of a decode leaves its mark,
// and no later start decodes those bytes again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { sha256 } from '../../functions/todo-app/picture.ts';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { createMemoryCgroup, memoryCgroupsUnavailable, watchAnon, type MemoryCgroup } from '../support/memoryCgroup.ts';
import { getPage, imageOf } from '../support/page.ts';
import { cannotRunHere } from '../support/skip.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

const MIB = 1024 * 1024;

/** Each picture, its type, and what the budget (130 MiB in 256 MiB, at 600 px) makes of it. */
const PICTURES = [
  { kind: 'webp-lossless-8192', type: 'image/webp', fate: 'refused' },
  { kind: 'webp-lossy-8192', type: 'image/webp', fate: 'refused' },
  { kind: 'gif-8192', type: 'image/gif', fate: 'refused' },
  { kind: 'png16-rgba-8192', type: 'image/png', fate: 'refused' },
  { kind: 'png-interlaced-8192', type: 'image/png', fate: 'refused' },
  { kind: 'avif-4096', type: 'image/avif', fate: 'refused' },
  { kind: 'png8-rgba-8192', type: 'image/png', fate: 'served' },
  { kind: 'jpeg-8192', type: 'image/jpeg', fate: 'served' },
  { kind: 'webp-animated-1792x16', type: 'image/webp', fate: 'served' },
  { kind: 'avif-1920', type: 'image/avif', fate: 'served' },
  { kind: 'gif-4096', type: 'image/gif', fate: 'served' },
] as const;
type Kind = (typeof PICTURES)[number]['kind'];

/** Function processes side by side, each in its own group: the machine has 2 cores. */
const SIDE_BY_SIDE = 3;

async function inBatches<T>(items: readonly T[], size: number, each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(each));
}

function makePicture(kind: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'test/fixtures/make-picture.mjs'), kind, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`make-picture ${kind}: exit ${code} ${err}`))));
  });
}

interface Measured {
  kind: string;
  where: string;
  maxUsageMiB: number;
  peakAnonMiB: number;
}

describe('in a 256 MiB memory cgroup (stack.yml), no picture takes the function down', () => {
  const unavailable = memoryCgroupsUnavailable();
  let root: string;
  const bytes = new Map<Kind, Buffer>();
  let good: Buffer;
  const measured: Measured[] = [];

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-cgroup-'));
    good = await makeJpeg(7, 640, 480, true);
    if (unavailable !== undefined) return;
    await inBatches(PICTURES, 2, async ({ kind }) => {
      const file = path.join(root, kind);
      await makePicture(kind, file);
      bytes.set(kind, fs.readFileSync(file));
    });
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
    if (measured.length > 0) {
      process.stderr.write(`# peak memory per picture in 256 MiB (cgroup max_usage incl. page cache / sampled anonymous):\n`);
      for (const m of measured) process.stderr.write(`#   ${m.kind.padEnd(24)} ${m.where.padEnd(8)} ${m.maxUsageMiB.toFixed(0).padStart(4)} / ${m.peakAnonMiB.toFixed(0).padStart(4)} MiB\n`);
    }
  });

  /** The function in its own 256 MiB group; `check` runs against it, then the kernel's counters are read. */
  async function inGroup(label: string, env: Record<string, string>, check: (fn: FunctionProcess) => Promise<void>): Promise<Measured> {
    const group: MemoryCgroup = createMemoryCgroup(label);
    const anon = watchAnon(group);
    const fn = await startFunction({ LOG_LEVEL: 'debug', FETCH_TIMEOUT_MS: '30000', ...env }, { wrap: group.wrap, readyTimeoutMs: 30_000 });
    try {
      // The budget comes from the group's limit, read as the process sees it: 256 - 64 - 4 x 10 MiB.
      const started = await eventually(() => fn.logs().find((line) => line.msg === 'todo-app started'), 5_000, 'the start line');
      assert.equal((started.settings as { decodeBudgetBytes: number }).decodeBudgetBytes, 130 * MIB);
      await check(fn);
      assert.equal(group.oomKills(), 0, `${label}: the OOM killer stepped in\n${fn.output().slice(-2000)}`);
      assert.equal(group.underOom(), false);
      assert.equal(fn.child.exitCode, null, `${label}: the function is still running`);
      assert.equal((await getPage(`${fn.url}/_/health`)).status, 200, `${label}: it keeps answering its health check`);
      return { kind: label, where: '', maxUsageMiB: group.maxUsageBytes() / MIB, peakAnonMiB: anon.peakBytes() / MIB };
    } finally {
      anon.stop();
      await fn.kill();
      group.remove();
    }
  }

  it('each picture from the source: refused from its header or served, never an OOM kill, and a refused one never saved', async (t: TestContext) => {
    if (unavailable !== undefined) return cannotRunHere(t, unavailable);
    await inBatches(PICTURES, SIDE_BY_SIDE, async ({ kind, type, fate }) => {
      const source = await startSource({ given: [{ bytes: bytes.get(kind)!, type }] });
      const dir = path.join(root, `from-source-${kind}`);
      try {
        const m = await inGroup(kind, { IMAGE_URL: source.url, IMAGE_DIR: dir }, async (fn) => {
          const first = await getPage(`${fn.url}/`);
          if (fate === 'refused') {
            assert.equal(first.status, 503, `${kind}: no picture to show`);
            const failed = fn.logs().find((line) => line.msg === 'refresh failed');
            assert.equal(failed?.code, 'OVER_BUDGET', `${kind}: ${JSON.stringify(failed)}`);
            assert.equal(fs.existsSync(path.join(dir, 'image.jpg')), false, `${kind}: never saved`);
          } else {
            assert.equal(first.status, 200, `${kind}: within the budget, served\n${fn.output().slice(-1500)}`);
          }
        });
        measured.push({ ...m, kind, where: 'source' });
      } finally {
        await source.close();
      }
    });
  });

  it('each picture planted on the volume without a verdict (IMAGE_WIDTH=600): ignored or served, never an OOM kill; a refused one is replaced by a download', async (t: TestContext) => {
    if (unavailable !== undefined) return cannotRunHere(t, unavailable);
    const source = await startSource({ given: [{ bytes: good, type: 'image/jpeg' }] });
    try {
      await inBatches(PICTURES, SIDE_BY_SIDE, async ({ kind, fate }) => {
        const dir = path.join(root, `planted-${kind}`);
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'image.jpg'), bytes.get(kind)!);
        fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
        const m = await inGroup(kind, { IMAGE_URL: source.url, IMAGE_DIR: dir, IMAGE_WIDTH: '600' }, async (fn) => {
          const page = await getPage(`${fn.url}/`);
          assert.equal(page.status, 200, `${kind}\n${fn.output().slice(-1500)}`);
          if (fate === 'refused') {
            const ignored = fn.logs().find((line) => String(line.msg).startsWith('saved image ignored'));
            assert.equal(ignored?.code, 'OVER_BUDGET', `${kind}: ${JSON.stringify(ignored)}`);
            await eventually(() => fs.readFileSync(path.join(dir, 'image.jpg')).equals(good), 10_000, `${kind}: the download replaced it`);
          } else {
            assert.equal(fn.logs().some((line) => String(line.msg).startsWith('saved image ignored')), false, `${kind}: within the budget, served`);
          }
        });
        measured.push({ ...m, kind, where: 'volume' });
      });
    } finally {
      await source.close();
    }
  });

  it('a good stale picture, then a GIF bomb from the source: the old picture is served throughout', async (t: TestContext) => {
    if (unavailable !== undefined) return cannotRunHere(t, unavailable);
    const source = await startSource({ given: [{ bytes: bytes.get('gif-8192')!, type: 'image/gif' }] });
    const dir = path.join(root, 'stale-then-bomb');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'image.jpg'), good);
    fs.writeFileSync(path.join(dir, '.ts'), new Date(Date.now() - 3600_000).toISOString());
    try {
      await inGroup('stale-then-bomb', { IMAGE_URL: source.url, IMAGE_DIR: dir }, async (fn) => {
        assert.ok(imageOf((await getPage(`${fn.url}/`)).body).equals(good));
        await eventually(() => fn.logs().find((line) => line.msg === 'refresh failed'), 15_000, 'the refresh of the bomb failed');
        assert.equal(fn.logs().find((line) => line.msg === 'refresh failed')?.code, 'OVER_BUDGET');
        for (let i = 0; i < 3; i++) assert.ok(imageOf((await getPage(`${fn.url}/`)).body).equals(good), 'the old picture, still');
        assert.ok(fs.readFileSync(path.join(dir, 'image.jpg')).equals(good));
      });
    } finally {
      await source.close();
    }
  });
});

describe('a picture whose decode killed the process is never decoded again', () => {
  let root: string;
  let big: Buffer;
  let source: ImageSource;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-marks-'));
    // Within the budget, and half a second of decoding: long enough to be killed in the middle of it.
    await makePicture('png8-rgba-8192', path.join(root, 'big.png'));
    big = fs.readFileSync(path.join(root, 'big.png'));
    source = await startSource();
  });
  after(async () => {
    await source.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const decodesOf = (fn: FunctionProcess, hash: string): number => fn.logs().filter((line) => line.msg === 'decode start' && line.sha256 === hash).length;
  const marks = (dir: string): string[] => fs.readdirSync(dir).filter((name) => name.startsWith('.decoding-'));

  /** Resolves once a decode mark appears in `dir`, at the moment it does; fails after 30 s without one. */
  function markAppears(dir: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watcher.close();
        reject(new Error(`no decode mark appeared in ${dir} within 30 s`));
      }, 30_000);
      const watcher = fs.watch(dir, () => {
        if (marks(dir).length === 0) return;
        clearTimeout(timer);
        watcher.close();
        resolve();
      });
    });
  }

  it('a start that finds the mark of a dead decode of the saved picture treats it as bad and downloads another', async () => {
    const dir = path.join(root, 'simulated');
    fs.mkdirSync(dir);
    const bad = await makeJpeg(3, 320, 240);
    fs.writeFileSync(path.join(dir, 'image.jpg'), bad);
    fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
    // What a process leaves when it is killed in the decode: a pid of this host that is gone.
    const gone = spawn('true');
    await new Promise((resolve) => gone.on('exit', resolve));
    const hash = sha256(bad);
    fs.writeFileSync(path.join(dir, `.decoding-${hash.slice(0, 32)}.${gone.pid}.0badf00d`), JSON.stringify({ sha256: hash, host: os.hostname(), pid: gone.pid, instance: 'gone' }));
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir });
    try {
      const page = await getPage(`${fn.url}/`);
      assert.equal(page.status, 200);
      assert.equal(imageOf(page.body).equals(bad), false, 'another picture');
      const ignored = fn.logs().filter((line) => String(line.msg).startsWith('saved image ignored'));
      assert.equal(ignored.length, 1, 'said once');
      assert.equal(ignored[0]!.code, 'DECODE_CRASHED');
      assert.equal(decodesOf(fn, hash), 0, 'never decoded');
    } finally {
      await fn.kill();
    }
  });

  it('kill -9 in the middle of the decode of a picture on the volume: the next start does not decode it again', async () => {
    const dir = path.join(root, 'killed-volume');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'image.jpg'), big);
    fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
    const marked = markAppears(dir);
    // The saved picture is decoded before the function listens.
    const first = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir }, { waitReady: false });
    await marked;
    await first.kill('SIGKILL');
    assert.equal(marks(dir).length, 1, 'killed in the decode: its mark is still there');
    const hash = sha256(big);
    const second = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir });
    try {
      const page = await getPage(`${second.url}/`);
      assert.equal(page.status, 200);
      assert.equal(decodesOf(second, hash), 0, 'not decoded again');
      assert.equal(second.logs().find((line) => String(line.msg).startsWith('saved image ignored'))?.code, 'DECODE_CRASHED');
      assert.equal(fs.readFileSync(path.join(dir, 'image.jpg')).equals(big), false, 'a download replaced it');
    } finally {
      await second.kill();
    }
  });

  it('kill -9 in the middle of the decode of a download: the next start refuses the same bytes undecoded, and keeps running', async () => {
    const bomb = await startSource({ given: [{ bytes: big, type: 'image/png' }] });
    const dir = path.join(root, 'killed-download');
    fs.mkdirSync(dir);
    try {
      const first = await startFunction({ IMAGE_URL: bomb.url, IMAGE_DIR: dir });
      const marked = markAppears(dir);
      const waiting = getPage(`${first.url}/`).catch(() => undefined);
      void waiting;
      await marked;
      await first.kill('SIGKILL');
      assert.equal(marks(dir).length, 1, 'killed in the decode: its mark is still there');
      const second = await startFunction({ IMAGE_URL: bomb.url, IMAGE_DIR: dir });
      void getPage(`${second.url}/`).catch(() => undefined); // the first visitor asks for the picture
      try {
        // The killed process held the refresh lock: it is taken over once stale (10 s), then the same bytes come again.
        const failed = await eventually(() => second.logs().find((line) => line.msg === 'refresh failed'), 25_000, 'the refresh failed');
        assert.equal(failed.code, 'DECODE_CRASHED', JSON.stringify(failed));
        assert.equal((await getPage(`${second.url}/`)).status, 503, 'no picture: the same bytes came again');
        assert.equal(decodesOf(second, sha256(big)), 0, 'not decoded again');
        assert.equal(fs.existsSync(path.join(dir, 'image.jpg')), false, 'nothing saved');
        await new Promise((r) => setTimeout(r, 1500)); // past the first back-off: it tries, and refuses, again
        assert.equal((await getPage(`${second.url}/`)).status, 503);
        assert.equal(second.child.exitCode, null, 'still running');
      } finally {
        await second.kill();
      }
    } finally {
      await bomb.close();
    }
  });
});
