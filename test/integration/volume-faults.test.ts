// The volume misbehaves: a missing folder, a read-only claim, a folder that
// cannot exist, a disk that fills up half way through a write. Each is made
// for real (mkdir, a read-only bind mount, a small tmpfs) and the real
// function process has to keep serving an intact image without crashing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { cannotRunHere } from '../support/skip.ts';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage, imageOf, type Answer } from '../support/page.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

const HOUR_MS = 3600_000;


const page = (fn: FunctionProcess): Promise<Answer> => getPage(fn.url);

function seedVolume(dir: string, image: Buffer, fetchedAt: number): void {
  fs.writeFileSync(path.join(dir, 'image.jpg'), image);
  fs.writeFileSync(path.join(dir, '.ts'), new Date(fetchedAt).toISOString());
}

/** Files a writer left behind: temp names are `.<file>.<pid>.<hex>.tmp`. */
function temps(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.endsWith('.tmp'));
}

function run(command: string, args: string[]): { ok: boolean; why: string } {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return { ok: result.status === 0, why: (result.stderr || result.error?.message || `exit ${result.status}`).trim() };
}

/** True when root's write into the folder is refused: permission bits alone do not stop root. */
function refusesWrites(dir: string): boolean {
  try {
    fs.writeFileSync(path.join(dir, '.probe'), 'x');
    fs.rmSync(path.join(dir, '.probe'));
    return false;
  } catch {
    return true;
  }
}

/**
 * The log line, once it arrived: the new page is served before the save is tried (and fails),
 * and a process's output reaches the test a moment after it is written.
 */
async function logged(fn: FunctionProcess, msg: string, withinMs = 3000): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const line = fn.logs().find((l) => l.msg === msg);
    if (line !== undefined || Date.now() > deadline) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the volume misbehaves', () => {
  let source: ImageSource;
  let old: Buffer;
  const cleanups: Array<() => Promise<void> | void> = [];

  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-volume-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  const start = async (env: Record<string, string>): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_URL: source.url, LOG_LEVEL: 'info', ...env });
    cleanups.push(async () => void (await fn.kill('SIGKILL')));
    return fn;
  };

  /** Mounts, unmounted after the test (after its processes are killed, as cleanups run in reverse). */
  const mount = (args: string[], target: string): { ok: boolean; why: string } => {
    const result = run('mount', [...args, target]);
    if (result.ok) cleanups.push(() => void (run('umount', [target]).ok || run('umount', ['-l', target])));
    return result;
  };

  /**
   * The folder as the function sees it read-only. Root ignores mode bits
   * (chmod 0555 would not stop it): a read-only bind mount is what a
   * `readOnly: true` volumeMount is; failing that, the immutable flag.
   * Undefined (and the test skipped, saying why) where neither works.
   */
  const readOnly = (t: TestContext, writable: string): string | undefined => {
    const claim = `${writable}-claim`;
    fs.mkdirSync(claim);
    const bound = mount(['--bind', '-o', 'ro', writable], claim);
    if (bound.ok && !refusesWrites(claim)) run('mount', ['-o', 'remount,bind,ro', claim]);
    if (bound.ok && refusesWrites(claim)) return claim;
    const immutable = run('chattr', ['+i', writable]);
    cleanups.push(() => void run('chattr', ['-i', writable]));
    if (immutable.ok && refusesWrites(writable)) return writable;
    cannotRunHere(t, `cannot make a folder read-only for root here: mount said "${bound.why}", chattr said "${immutable.why}"`);
    return undefined;
  };

  before(async () => {
    source = await startSource({ pictures: 2 });
    old = await makeJpeg(99);
  });
  after(async () => {
    await source.close();
  });

  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    source.mode = 'ok';
  };

  test('IMAGE_DIR missing, nested three deep: created, and the image saved there', async (t: TestContext) => {
    t.after(cleanUp);
    const dir = path.join(tempDir(), 'claim', 'todo-app', 'images');
    const fn = await start({ IMAGE_DIR: dir });
    const first = await page(fn);
    assert.equal(first.status, 200);
    const served = imageOf(first.body);
    assert.deepEqual(fs.readFileSync(path.join(dir, 'image.jpg')), served, 'image.jpg holds the served picture');
    assert.ok(Date.parse(fs.readFileSync(path.join(dir, '.ts'), 'utf8')) > Date.now() - 60_000, '.ts holds its download time');
    assert.deepEqual(temps(dir), []);
  });

  test('IMAGE_DIR deleted while the function runs: made again at the next refresh, and the new image saved there', async (t: TestContext) => {
    t.after(cleanUp);
    const dir = path.join(tempDir(), 'claim', 'images');
    const fn = await start({ IMAGE_DIR: dir, IMAGE_TTL_SECONDS: '1' });
    assert.equal((await page(fn)).status, 200);
    fs.rmSync(path.dirname(dir), { recursive: true });
    await new Promise((r) => setTimeout(r, 1100));
    const downloads = source.downloads;
    const saved = await eventually(
      async () => {
        assert.equal((await page(fn)).status, 200, 'the image in memory is served meanwhile');
        const file = path.join(dir, 'image.jpg');
        return source.downloads > downloads && fs.existsSync(file) && fs.readFileSync(file);
      },
      10_000,
      'the folder is back, with the new image in it',
    );
    assert.ok(source.served.some((picture) => picture.equals(saved)), 'it holds a downloaded picture, whole');
    assert.ok(Date.parse(fs.readFileSync(path.join(dir, '.ts'), 'utf8')) > Date.now() - 60_000, 'and its time');
  });

  test('the log disk fills up (LOG_FILE on a small tmpfs): said once on stderr, stdout and the function go on, the file catches up once there is room', async (t: TestContext) => {
    t.after(cleanUp);
    const logs = path.join(tempDir(), 'logs');
    fs.mkdirSync(logs);
    const sized = mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], logs);
    if (!sized.ok) {
      t.skip(`mount -t tmpfs is not permitted here (${sized.why})`);
      return;
    }
    const logFile = path.join(logs, 'todo-app.log');
    const fn = await start({ IMAGE_DIR: tempDir(), IMAGE_TTL_SECONDS: '1', LOG_FILE: logFile });
    const filler = path.join(logs, 'filler');
    assert.throws(() => fs.writeFileSync(filler, Buffer.alloc(1024 * 1024)), /ENOSPC/, 'the log disk is full');
    // tmpfs hands out whole pages: fill the rest of the log file's last one too (blank lines, no JSON to break).
    assert.throws(() => fs.appendFileSync(logFile, '\n'.repeat(8192)), /ENOSPC/, 'to the last byte');
    const full = fs.readFileSync(logFile, 'utf8');

    // Each refresh logs several lines; with the disk full none reaches the file.
    for (let i = 0; i < 3; i++) {
      assert.equal((await page(fn)).status, 200);
      await new Promise((r) => setTimeout(r, 1100));
    }
    await eventually(() => fn.logs().filter((line) => line.msg === 'download done').length >= 3, 10_000, 'stdout still has every line');
    assert.equal(fn.child.exitCode, null, `the process lives:\n${fn.output()}`);
    const said = fn.logs().filter((line) => String(line.msg).startsWith('LOG_FILE cannot be written'));
    assert.equal(said.length, 1, `the failure is said once:\n${fn.output()}`);
    assert.equal(said[0]!.code, 'ENOSPC');
    assert.equal(fs.readFileSync(logFile, 'utf8'), full, 'nothing half-written went into the file');

    fs.rmSync(filler);
    assert.equal((await page(fn)).status, 200);
    const caughtUp = await eventually(
      () => {
        const lines = fs.readFileSync(logFile, 'utf8').split('\n').filter((line) => line !== '');
        return lines.filter((line) => line.includes('"download done"')).length >= 4 && lines;
      },
      10_000,
      'the lines kept while the disk was full reach the file with the next ones',
    );
    for (const line of caughtUp) JSON.parse(line);
    assert.ok(fn.logs().some((line) => line.msg === 'LOG_FILE written again'), 'the recovery is said too');
  });

  test('a read-only volume holding a stale image: served at once, refreshed into memory, files untouched, clear log', async (t: TestContext) => {
    t.after(cleanUp);
    const writable = path.join(tempDir(), 'disk');
    fs.mkdirSync(writable);
    seedVolume(writable, old, Date.now() - HOUR_MS);
    const stamp = fs.readFileSync(path.join(writable, '.ts'), 'utf8');
    const dir = readOnly(t, writable);
    if (dir === undefined) return;

    const downloadsBefore = source.downloads;
    const fn = await start({ IMAGE_DIR: dir });
    const first = await page(fn);
    assert.equal(first.status, 200, 'the stale image is served while the refresh runs');
    assert.deepEqual(imageOf(first.body), old);

    const fresh = await eventually(
      async () => {
        const now = await page(fn);
        assert.equal(now.status, 200, 'never a failed page on a read-only volume');
        const image = imageOf(now.body);
        return !image.equals(old) && image;
      },
      15_000,
      'the new image is served from memory',
    );
    assert.ok(source.served.some((picture) => picture.equals(fresh)), 'it is the downloaded picture, intact');
    const lock = await logged(fn, 'cannot take the refresh lock (volume not writable?); refreshing without it');
    const save = await logged(fn, 'cannot save the image on the volume; serving it from memory');
    assert.ok(lock, `the log says the lock could not be made:\n${fn.output()}`);
    assert.ok(save, `the log says the image could not be saved:\n${fn.output()}`);
    assert.ok(['EROFS', 'EPERM', 'EACCES'].includes(String(save.code)), `the log gives the system's reason: ${String(save.code)}`);
    assert.deepEqual(fs.readFileSync(path.join(writable, 'image.jpg')), old, 'image.jpg is untouched');
    assert.equal(fs.readFileSync(path.join(writable, '.ts'), 'utf8'), stamp, '.ts is untouched');
    assert.equal(fn.child.exitCode, null, 'the process lives');
    assert.equal((await page(fn)).status, 200);
    assert.equal(source.downloads - downloadsBefore, 1, 'the image in memory is not downloaded again on every request');
  });

  test('a read-only empty volume and a failing source: 503 with Retry-After, then the image from memory once the source is back', async (t: TestContext) => {
    t.after(cleanUp);
    const writable = path.join(tempDir(), 'disk');
    fs.mkdirSync(writable);
    const dir = readOnly(t, writable);
    if (dir === undefined) return;

    source.mode = 'error';
    const fn = await start({ IMAGE_DIR: dir, FETCH_TIMEOUT_MS: '3000' });
    const first = await page(fn);
    assert.equal(first.status, 503, 'no image and no source: 503');
    assert.ok(Number(first.headers.get('retry-after')) >= 1, 'with Retry-After');
    assert.match(first.body, /could not be fetched/);
    assert.ok(await logged(fn, 'refresh failed'), `the log says why:\n${fn.output()}`);

    source.mode = 'ok';
    const image = await eventually(
      async () => {
        const now = await page(fn);
        return now.status === 200 && imageOf(now.body);
      },
      15_000,
      'the function recovers by itself and serves the image from memory',
    );
    assert.ok(source.served.some((picture) => picture.equals(image)));
    assert.ok(await logged(fn, 'cannot save the image on the volume; serving it from memory'), `the log says the save failed:\n${fn.output()}`);
    assert.deepEqual(fs.readdirSync(writable), [], 'nothing was written');
    assert.equal(fn.child.exitCode, null, 'the process lives');
  });

  test('IMAGE_DIR that cannot be created (below a regular file): logged, and the image served from memory', async (t: TestContext) => {
    t.after(cleanUp);
    const base = tempDir();
    fs.writeFileSync(path.join(base, 'file'), 'not a folder');
    const fn = await start({ IMAGE_DIR: path.join(base, 'file', 'images') });
    const created = await logged(fn, 'IMAGE_DIR cannot be created; images will live in memory only');
    assert.ok(created, `the start-up log says the folder cannot be made:\n${fn.output()}`);
    assert.equal(created.code, 'ENOTDIR');
    const first = await page(fn);
    assert.equal(first.status, 200, 'the first request waits for the download and gets it from memory');
    assert.ok(source.served.some((picture) => picture.equals(imageOf(first.body))));
    assert.ok(await logged(fn, 'cannot save the image on the volume; serving it from memory'), `the log says the save failed:\n${fn.output()}`);
    assert.equal(fs.readFileSync(path.join(base, 'file'), 'utf8'), 'not a folder');
    assert.equal((await page(fn)).status, 200);
    assert.equal(fn.child.exitCode, null, 'the process lives');
  });

  /** The old image is stale, the new one is larger than the room left: its write starts and fails half way. */
  const halfWrite = async (t: TestContext, how: 'tmpfs' | 'fsize'): Promise<void> => {
    t.after(cleanUp);
    const big = await startSource({ pictures: 1, width: 800, height: 800, noise: true });
    cleanups.push(() => big.close());
    const size = big.pictures[0]!.length;
    const dir = path.join(tempDir(), 'claim');
    fs.mkdirSync(dir);
    if (how === 'tmpfs') {
      // Room for the old image and about half of the new one.
      const room = old.length + Math.floor(size / 2);
      const sized = mount(['-t', 'tmpfs', '-o', `size=${Math.ceil(room / 4096) * 4096}`, 'tmpfs'], dir);
      if (!sized.ok) {
        cannotRunHere(t, `mount -t tmpfs is not permitted here (${sized.why}); the file size limit test fails the same write`);
        return;
      }
    }
    seedVolume(dir, old, Date.now() - HOUR_MS);
    const stamp = fs.readFileSync(path.join(dir, '.ts'), 'utf8');

    const fn = await startFunction({ IMAGE_URL: big.url, IMAGE_DIR: dir, LOG_LEVEL: 'info' });
    cleanups.push(async () => void (await fn.kill('SIGKILL')));
    if (how === 'fsize') {
      // RLIMIT_FSIZE on the running process: a write past it fails with EFBIG (Node ignores SIGXFSZ).
      const limit = Math.floor(size / 2);
      const limited = run('prlimit', ['--pid', String(fn.child.pid), `--fsize=${limit}:${limit}`]);
      if (!limited.ok) {
        cannotRunHere(t, `prlimit cannot limit the process here: ${limited.why}`);
        return;
      }
    }

    const first = await page(fn);
    assert.equal(first.status, 200);
    assert.deepEqual(imageOf(first.body), old, 'the stale image is served while the refresh runs');
    const fresh = await eventually(
      async () => {
        assert.equal(fn.child.exitCode, null, `the process lives:\n${fn.output()}`);
        const now = await page(fn);
        assert.equal(now.status, 200, 'never a failed page when the write fails');
        const image = imageOf(now.body);
        return !image.equals(old) && image;
      },
      15_000,
      'the new image is served from memory',
    );
    assert.deepEqual(fresh, big.pictures[0], 'the page carries the whole new picture');
    const save = await logged(fn, 'cannot save the image on the volume; serving it from memory');
    assert.ok(save, `the log says the save failed:\n${fn.output()}`);
    assert.equal(save.code, how === 'tmpfs' ? 'ENOSPC' : 'EFBIG', "the log gives the system's reason");
    assert.deepEqual(fs.readFileSync(path.join(dir, 'image.jpg')), old, 'image.jpg is the old image, byte for byte');
    assert.equal(fs.readFileSync(path.join(dir, '.ts'), 'utf8'), stamp, '.ts still dates the old image');
    assert.deepEqual(temps(dir), [], 'the half-written temp file is removed');
    assert.equal(fn.child.exitCode, null, 'the process lives');

    // A replica started now reads the volume as it is: the old image, whole.
    const second = await startFunction({ IMAGE_URL: big.url, IMAGE_DIR: dir, LOG_LEVEL: 'info' });
    cleanups.push(async () => void (await second.kill('SIGKILL')));
    const again = await page(second);
    assert.equal(again.status, 200);
    assert.deepEqual(imageOf(again.body), old, 'a restarted replica still finds the old image intact');
  };

  test('the disk fills up half way through writing the new image (a small tmpfs): the old image stays byte for byte', (t: TestContext) =>
    halfWrite(t, 'tmpfs'));

  test('a file size limit stops the write half way (RLIMIT_FSIZE): a logged write error, not a killed process, the old image intact', (t: TestContext) =>
    halfWrite(t, 'fsize'));
});
