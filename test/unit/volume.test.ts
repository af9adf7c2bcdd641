import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { CLOCK_SKEW_MS, EARLIEST_STAMP, parseStamp, Volume } from '../../functions/todo-app/volume.ts';
import { makeJpeg } from '../support/source.ts';

const log = pino({ level: 'silent' });
const MAX = 10 * 1024 * 1024;

function spawnSyncOk(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
}

describe('the volume', () => {
  let dir: string;
  let volume: Volume;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-volume-'));
    volume = new Volume(dir, log);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps the seed layout: image.jpg and .ts as ISO 8601 UTC', async () => {
    const bytes = await makeJpeg(1);
    const at = Date.parse('2026-11-25T12:34:56.789Z');
    await volume.writeImage(bytes, at, { said: 'decoded' });
    assert.ok(fs.readFileSync(path.join(dir, 'image.jpg')).equals(bytes));
    assert.equal(fs.readFileSync(path.join(dir, '.ts'), 'utf8'), '2026-11-25T12:34:56.789Z');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['.image.jpg.verified', '.ts', 'image.jpg']);
    assert.deepEqual(await volume.readVerdict('image.jpg'), { said: 'decoded' }, 'the verdict of its decode lies beside it');
    const stored = await volume.readImage(MAX);
    assert.ok(stored?.bytes.equals(bytes));
    assert.equal(stored?.fetchedAt, at);
  });

  it('reads a .ts the course app wrote, and an image with no .ts by its mtime', async () => {
    assert.equal(parseStamp('2026-01-02T03:04:05Z\n'), Date.parse('2026-01-02T03:04:05Z'));
    assert.equal(parseStamp('1764000000000'), 1_764_000_000_000);
    assert.ok(Number.isNaN(parseStamp('yesterday')));
    fs.writeFileSync(path.join(dir, 'image.jpg'), await makeJpeg(2));
    const mtime = fs.statSync(path.join(dir, 'image.jpg')).mtimeMs;
    assert.equal(await volume.readStamp(), mtime);
  });

  it('reads ISO 8601 with an offset, without one as UTC whatever the local zone, and epoch ms; nothing else', () => {
    const at = Date.UTC(2026, 0, 2, 3, 4, 5, 123);
    for (const text of ['2026-01-02T03:04:05.123Z', '2026-01-02T03:04:05.123', '2026-01-02 03:04:05.123', '2026-01-02T05:04:05.123+02:00', '2026-01-02T05:04:05.123+0200', '2026-01-01T22:04:05.123456-05:00', String(at)]) {
      assert.equal(parseStamp(text), at, text);
    }
    assert.equal(parseStamp('2026-01-02'), Date.UTC(2026, 0, 2));
    for (const text of ['', 'yesterday', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-02T24:00:00Z', '2026-01-02T03:04:05+25:00', '99999999999999999999', '-1', '1e12', '2026-01-02T03:04:05Z trailing']) {
      assert.ok(Number.isNaN(parseStamp(text)), `${JSON.stringify(text)} is no time`);
    }
  });

  it('a .ts out of range (future past the clock skew, before 2000, beyond Date) gives way to the mtime; a future mtime to the earliest time', async () => {
    const image = path.join(dir, 'image.jpg');
    fs.writeFileSync(image, await makeJpeg(2));
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(image, hourAgo, hourAgo);
    const stamp = (text: string): Promise<number | undefined> => {
      fs.writeFileSync(path.join(dir, '.ts'), text);
      return volume.readStamp();
    };
    for (const text of ['2099-01-01T00:00:00Z', new Date(Date.now() + CLOCK_SKEW_MS + 60_000).toISOString(), '1999-12-31T23:59:59Z', '0', '8640000000000001', '99999999999999']) {
      assert.equal(await stamp(text), fs.statSync(image).mtimeMs, `.ts ${text}: the image's mtime`);
    }
    const skewed = Date.now() + CLOCK_SKEW_MS - 60_000;
    assert.equal(await stamp(new Date(skewed).toISOString()), skewed, 'a time within the clock skew counts');
    const future = new Date(Date.now() + 365 * 24 * 3600_000);
    fs.utimesSync(image, future, future);
    assert.equal(await stamp('garbage'), EARLIEST_STAMP, 'no sane time at all: the image counts as the oldest');
  });

  it('reads only regular files: a FIFO, a folder, /dev/zero and a sparse giant are refused at once, unread', async () => {
    const image = path.join(dir, 'image.jpg');
    fs.writeFileSync(path.join(dir, '.ts'), new Date().toISOString());
    const refusals: Array<[string, () => void, RegExp]> = [
      ['a FIFO with no writer', () => spawnSyncOk('mkfifo', [image]), /is a FIFO/],
      ['a folder', () => fs.mkdirSync(image), /is a folder/],
      ['a link to /dev/zero', () => fs.symlinkSync('/dev/zero', image), /is a character device/],
      ['a sparse file over the cap', () => fs.truncateSync((fs.writeFileSync(image, ''), image), MAX + 1), /over the cap/],
    ];
    for (const [what, make, reason] of refusals) {
      fs.rmSync(image, { recursive: true, force: true });
      make();
      const started = performance.now();
      await assert.rejects(volume.readImage(MAX), reason, what);
      assert.ok(performance.now() - started < 1000, `${what}: refused at once`);
    }
    fs.rmSync(image, { recursive: true, force: true });
    fs.rmSync(path.join(dir, '.ts'));
    spawnSyncOk('mkfifo', [path.join(dir, '.ts')]);
    fs.writeFileSync(image, 'x');
    assert.equal(typeof (await volume.readStamp()), 'number', 'a FIFO as .ts is no time, and no hang');
  });

  it('has nothing when the folder is empty', async () => {
    assert.equal(await volume.readStamp(), undefined);
    assert.equal(await volume.readImage(MAX), undefined);
    assert.equal(await volume.readVerdict('image.jpg'), undefined);
  });

  it('never lets a reader see half an image while it is replaced', async () => {
    const pictures = [await makeJpeg(1, 800, 800, true), await makeJpeg(2, 800, 800, true)];
    await volume.writeImage(pictures[0]!, Date.now(), {});
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const bytes = fs.readFileSync(path.join(dir, 'image.jpg'));
        assert.ok(pictures.some((p) => p.equals(bytes)), `read ${bytes.length} bytes that are neither picture`);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 40; i++) await volume.writeImage(pictures[i % 2]!, Date.now(), {});
    writing = false;
    await reader;
    assert.ok(reads > 10, `only ${reads} reads`);
  });

  it('removes temp files a killed writer left, and keeps the young temps of writes done outside the lock', async () => {
    fs.writeFileSync(path.join(dir, '.image.jpg.123.abcd.tmp'), 'half');
    fs.writeFileSync(path.join(dir, '..ts.123.abcd.tmp'), '2026');
    fs.writeFileSync(path.join(dir, '.variant-600w-x.jpg.9.ab.tmp'), 'in use');
    fs.writeFileSync(path.join(dir, '..image.jpg.verified.9.ab.tmp'), 'in use');
    fs.writeFileSync(path.join(dir, 'image.jpg'), 'keep');
    assert.equal(await volume.removeOrphans(), 2);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['..image.jpg.verified.9.ab.tmp', '.variant-600w-x.jpg.9.ab.tmp', 'image.jpg']);
  });

  it('keeps one variant: the copy of an earlier image goes, with its verdict, when a new one is saved', async () => {
    const old = volume.variantName(600, 'a'.repeat(64));
    const fresh = volume.variantName(600, 'b'.repeat(64));
    assert.equal(fresh, `variant-600w-${'b'.repeat(16)}.jpg`);
    await volume.writeVariant(old, Buffer.from('old'), { of: 'old' });
    await volume.writeVariant(fresh, Buffer.from('new'), { of: 'new' });
    assert.deepEqual(fs.readdirSync(dir).sort(), [`.${fresh}.verified`, fresh]);
    assert.equal((await volume.readVariant(fresh, MAX))?.toString(), 'new');
    assert.deepEqual(await volume.readVerdict(fresh), { of: 'new' });
  });

  it('waits for the lock another process holds, and stops waiting once that process saved an image', async () => {
    // A real second process takes the same lock with proper-lockfile and keeps it.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import lockfile from 'proper-lockfile';
         await lockfile.lock(${JSON.stringify(path.join(dir, 'image.jpg'))}, { lockfilePath: ${JSON.stringify(path.join(dir, '.refresh.lock'))}, realpath: false });
         console.log('locked');
         setInterval(() => {}, 1000);`,
      ],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      let asked = 0;
      let ran = false;
      const result = await volume.withLock(
        async () => {
          ran = true;
          return 'work';
        },
        async () => ++asked >= 3,
        performance.now() + 10_000,
        new AbortController().signal,
      );
      assert.equal(ran, false);
      assert.equal(result, undefined);
      assert.equal(asked, 3);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('runs the work under the lock and releases it', async () => {
    const result = await volume.withLock(
      async () => {
        assert.ok(fs.existsSync(path.join(dir, '.refresh.lock')));
        return 'done';
      },
      async () => false,
      performance.now() + 1000,
      new AbortController().signal,
    );
    assert.equal(result, 'done');
    assert.equal(fs.existsSync(path.join(dir, '.refresh.lock')), false);
  });

  it('takes over at once a lock dated more than the clock skew ahead (touch -d 2099), not one within it', async () => {
    const lock = path.join(dir, '.refresh.lock');
    const work = (): Promise<string | undefined> => volume.withLock(async () => 'ran', async () => false, performance.now() + 1500, new AbortController().signal);
    fs.mkdirSync(lock);
    fs.utimesSync(lock, new Date('2099-01-01T00:00:00Z'), new Date('2099-01-01T00:00:00Z'));
    const started = performance.now();
    assert.equal(await work(), 'ran');
    assert.ok(performance.now() - started < 1000, 'at once, not after a wait');
    fs.mkdirSync(lock);
    const soon = new Date(Date.now() + 60_000); // a holder whose clock runs a minute ahead: alive
    fs.utimesSync(lock, soon, soon);
    await assert.rejects(work(), /held the refresh lock past the wait bound/);
    fs.rmdirSync(lock);
  });
});
