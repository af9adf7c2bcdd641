// Processes die in the middle of a refresh, for real: kill -9 while a slow
// download holds the volume's lock, SIGTERM as Kubernetes sends it on a
// scale-down. The next process serves the image the dead one saved, takes the
// dead lock over and refreshes; a terminated one finishes, lets go and exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage as get, imageOf } from '../support/page.ts';
import { startSource, type ImageSource, type SourceMode } from '../support/source.ts';

/** proper-lockfile's stale bound in volume.ts is 10 s; the issue allows at most 30 s. */
const TAKEOVER_BOUND_MS = 30_000;




const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const temps = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.tmp'));
const logged = (fn: FunctionProcess, msg: string): Array<Record<string, unknown>> => fn.logs().filter((line) => line.msg === msg);

let cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function source(): Promise<ImageSource> {
  const started = await startSource({ width: 400, height: 300, noise: true });
  cleanups.push(() => started.close());
  return started;
}

function folder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faults-crash-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function fn(env: Record<string, string>): Promise<FunctionProcess> {
  const started = await startFunction(env);
  cleanups.push(() => started.kill('SIGKILL'));
  return started;
}

/**
 * A process that saved the first picture, whose TTL ran out, and whose refresh
 * is now downloading a slow second picture while it holds the volume's lock.
 */
async function midRefresh(src: ImageSource, dir: string, env: Record<string, string>, mode: SourceMode): Promise<{ first: FunctionProcess; stamp: string }> {
  src.mode = 'ok';
  const first = await fn({ IMAGE_DIR: dir, IMAGE_URL: src.url, ...env });
  const page = await get(first.url);
  assert.equal(page.status, 200, first.output());
  assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(src.pictures[0]!), 'the first picture is saved whole');
  const stamp = readFileSync(path.join(dir, '.ts'), 'utf8');
  src.mode = mode;
  await sleep(Number(env.IMAGE_TTL_SECONDS) * 1000 + 300);
  const stale = await get(first.url);
  assert.equal(stale.status, 200);
  assert.ok(imageOf(stale.body).equals(src.pictures[0]!), 'the old picture while the refresh runs');
  await eventually(() => src.downloads === 2 && existsSync(path.join(dir, '.refresh.lock')), 5000, `a refresh holding the lock\n${first.output()}`);
  assert.equal(logged(first, 'download start').length, 2);
  return { first, stamp };
}

describe('kill -9 during a slow download', () => {
  it('a new process on the same folder serves the intact image, takes the dead lock over, refreshes and leaves no temp files', async (t) => {
    const src = await source();
    const dir = folder();
    const env = { IMAGE_TTL_SECONDS: '2', FETCH_TIMEOUT_MS: '10000' };
    const { first, stamp } = await midRefresh(src, dir, env, 'trickle');
    await sleep(500);
    assert.equal(src.served.length, 1, 'the second picture is still on its way');
    const exit = await first.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal(exit.signal, 'SIGKILL');

    const lock = path.join(dir, '.refresh.lock');
    assert.ok(existsSync(lock), 'the dead process left its lock behind');
    assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(src.pictures[0]!), 'image.jpg is still the first picture, whole');
    assert.equal(readFileSync(path.join(dir, '.ts'), 'utf8'), stamp);
    // The download is held in memory until it decodes, so a kill mid-download writes no temp;
    // a kill between writing the temp and the rename does: leave one as that kill would.
    const orphan = `.image.jpg.${first.child.pid}.0badf00d.tmp`;
    writeFileSync(path.join(dir, orphan), src.pictures[1]!.subarray(0, src.pictures[1]!.length >> 1));

    src.mode = 'ok';
    const second = await fn({ IMAGE_DIR: dir, IMAGE_URL: src.url, ...env });
    const adopted = await get(second.url);
    assert.equal(adopted.status, 200, second.output());
    assert.ok(imageOf(adopted.body).equals(src.pictures[0]!), 'the restarted function serves the first picture, byte for byte');
    assert.ok(adopted.ms < 10_000, `at once, not after the lock: took ${Math.round(adopted.ms)} ms`);

    // Steady requests while the dead lock ages: every one is answered with an intact image.
    let answers = 0;
    await eventually(
      async () => {
        const answer = await get(second.url);
        assert.equal(answer.status, 200);
        const image = imageOf(answer.body);
        assert.ok(src.pictures.some((picture) => picture.equals(image)), 'an intact picture');
        answers++;
        await sleep(200);
        return src.downloads >= 3;
      },
      TAKEOVER_BOUND_MS,
      `the new process takes the dead lock over and downloads\n${second.output()}`,
    );
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`lock taken over and the download started ${takeoverMs} ms after the kill, ${answers} requests answered meanwhile`);
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS);

    await eventually(() => logged(second, 'download done').length > 0 && !existsSync(lock), 10_000, `the refresh completes and lets the lock go\n${second.output()}`);
    const saved = readFileSync(path.join(dir, 'image.jpg'));
    assert.ok(saved.equals(src.served.at(-1)!), 'image.jpg is the picture just downloaded');
    assert.ok(!saved.equals(src.pictures[0]!), 'a new picture');
    assert.ok(Date.parse(readFileSync(path.join(dir, '.ts'), 'utf8')) > Date.parse(stamp), '.ts moved forward');
    assert.deepEqual(temps(dir), [], 'no temp file left, the orphan included');
    const fresh = await get(second.url);
    assert.ok(imageOf(fresh.body).equals(saved), 'the page carries the new picture');
    assert.equal(second.child.exitCode, null);
  });
});

describe('SIGTERM during a refresh', () => {
  it('a download that fits the bound is finished and saved, the lock released, exit code 0', async () => {
    const src = await source();
    const dir = folder();
    // A trickle takes about 3.2 s, well inside the 10 s bound.
    const { first } = await midRefresh(src, dir, { IMAGE_TTL_SECONDS: '1', FETCH_TIMEOUT_MS: '10000' }, 'trickle');
    assert.equal(src.served.length, 1, 'the second picture is still on its way');

    const signalled = Date.now();
    const exit = await first.kill('SIGTERM');
    const tookMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, first.output());
    assert.ok(tookMs < 10_000 + 3000, `exited within the bound, took ${tookMs} ms`);

    assert.equal(src.served.length, 2, 'the download ran to its end');
    assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(src.served[1]!), 'and the second picture was saved');
    assert.ok(!existsSync(path.join(dir, '.refresh.lock')), 'the lock is released');
    assert.deepEqual(temps(dir), []);
    const messages = first.logs().map((line) => line.msg);
    const term = messages.indexOf('stopping: ending the refresh in flight');
    assert.ok(term >= 0, 'the log says SIGTERM arrived');
    assert.ok(messages.lastIndexOf('download done') > term, 'then that the download finished');
    assert.ok(messages.lastIndexOf('stopped') > messages.lastIndexOf('download done'), 'then that it stopped');
  });

  it('a download that never ends is given up within the bound; the old image stays, the lock is released, exit code 0', async () => {
    const src = await source();
    const dir = folder();
    const { first } = await midRefresh(src, dir, { IMAGE_TTL_SECONDS: '1', FETCH_TIMEOUT_MS: '3000' }, 'hang');
    const kept = readFileSync(path.join(dir, 'image.jpg'));

    const signalled = Date.now();
    const exit = await first.kill('SIGTERM');
    const tookMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, first.output());
    assert.ok(tookMs < 3000 + 3000, `exited within the bound, took ${tookMs} ms`);
    assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(kept), 'the saved image is untouched');
    assert.ok(!existsSync(path.join(dir, '.refresh.lock')), 'the lock is released');
    assert.deepEqual(temps(dir), []);
    const messages = first.logs().map((line) => line.msg);
    const term = messages.indexOf('stopping: ending the refresh in flight');
    assert.ok(term >= 0);
    assert.ok(messages.lastIndexOf('refresh failed') > term, 'the log says the refresh was given up');
    assert.ok(messages.lastIndexOf('stopped') > messages.lastIndexOf('refresh failed'));
  });

  it('waiting for another replica\'s lock is given up within the bound; that lock is left to its owner, exit code 0', async () => {
    const src = await source();
    const dir = folder();
    const first = await fn({ IMAGE_DIR: dir, IMAGE_URL: src.url, IMAGE_TTL_SECONDS: '1', FETCH_TIMEOUT_MS: '2000' });
    assert.equal((await get(first.url)).status, 200);

    // Another replica is refreshing: a real process holds the lock and keeps it fresh.
    const holder = spawn(process.execPath, [path.join(repoRoot, 'test/fixtures/hold-refresh-lock.mjs'), dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => holder.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
    });

    await sleep(1300);
    const stale = await get(first.url);
    assert.equal(stale.status, 200);
    await eventually(() => logged(first, 'image stale').length > 0, 5000, first.output());
    await sleep(500);
    assert.equal(src.downloads, 1, 'it waits for the lock, it does not download');

    const signalled = Date.now();
    const exit = await first.kill('SIGTERM');
    const tookMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, first.output());
    assert.ok(tookMs < 2000 + 3000, `exited within the bound, took ${tookMs} ms`);
    assert.ok(existsSync(path.join(dir, '.refresh.lock')), "the other replica's lock is not taken from it");
    assert.equal(src.downloads, 1);
    const failed = logged(first, 'refresh failed');
    assert.equal(failed.at(-1)?.code, 'LOCK_TIMEOUT', first.output());
    assert.ok(first.logs().some((line) => line.msg === 'stopped'));
  });
});
