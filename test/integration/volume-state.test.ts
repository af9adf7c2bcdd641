// The volume's state is said at start, before any request: the start line
// carries it, and a volume the function cannot write gets one warning with the
// cause and the fix. Each state is made for real: a read-only tmpfs (a
// `readOnly: true` volumeMount), a root-owned folder with the function running
// as UID 12000 (the course's /tmp/kube and the image's USER), a path below
// a read-only mount, and /proc, where no folder can ever be made.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { entry, eventually, repoRoot, startFunction, watch, type FunctionProcess } from '../support/fn.ts';
import { getPage } from '../support/page.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { cannotRunHere } from '../support/skip.ts';
import { startSource, type ImageSource } from '../support/source.ts';

/** The image's USER, and the UID faas-netes sets with setNonRootUser. */
const FUNCTION_UID = 12000;

type Line = Record<string, unknown>;

/** The start line, and every warning written before it: what a user sees before the first request. */
async function startOf(fn: Pick<FunctionProcess, 'logs' | 'output'>): Promise<{ start: Line; warnings: Line[] }> {
  const lines = await eventually(
    () => {
      const logs = fn.logs();
      const at = logs.findIndex((line) => line.msg === 'todo-app started');
      return at >= 0 && logs.slice(0, at + 1);
    },
    10_000,
    'the start line',
  );
  return { start: lines.at(-1)!, warnings: lines.filter((line) => line.level === 40) };
}

describe('the volume at start', () => {
  let source: ImageSource;
  let scratch: string;
  const cleanups: Array<() => void | Promise<void>> = [];
  before(async () => {
    source = await startSource();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-volume-state-'));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await source.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** An empty tmpfs mounted read-only: what a `readOnly: true` volumeMount gives the container. */
  const readOnlyMount = (t: TestContext, name: string): string | undefined => {
    const dir = path.join(scratch, name);
    fs.mkdirSync(dir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      cannotRunHere(t, `mount -t tmpfs -o ro is not permitted here: ${(mounted.stderr || mounted.error?.message || '').trim()}`);
      return undefined;
    }
    cleanups.push(() => void spawnSync('umount', ['-l', dir]));
    return dir;
  };

  const start = async (env: Record<string, string>): Promise<FunctionProcess> => {
    const fn = await startFunction({ IMAGE_URL: source.url, LOG_LEVEL: 'info', ...env });
    cleanups.push(async () => void (await fn.kill('SIGKILL')));
    return fn;
  };

  /**
   * The function as UID/GID 12000, as the image runs it. setpriv (util-linux) rather than
   * spawn's uid option: the node binary and the checkout may sit below a folder only root can
   * enter (/root), and the ambient CAP_DAC_READ_SEARCH lets the process read and enter folders,
   * never write them, so every write is judged as UID 12000's.
   */
  const startAs12000 = async (t: TestContext, env: Record<string, string>): Promise<FunctionProcess | undefined> => {
    if (process.getuid?.() !== 0) {
      cannotRunHere(t, `only root can start a process as UID ${FUNCTION_UID}`);
      return undefined;
    }
    const port = await freePort();
    const child = spawn(
      'setpriv',
      [`--reuid=${FUNCTION_UID}`, `--regid=${FUNCTION_UID}`, '--clear-groups', '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search', process.execPath, entry],
      { cwd: repoRoot, env: { PATH: process.env.PATH, IMAGE_URL: source.url, LOG_LEVEL: 'info', ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const fn = { ...watch(child), port, url: `http://127.0.0.1:${port}` };
    cleanups.push(async () => void (await fn.kill('SIGKILL')));
    try {
      await waitForPort(port, 15_000, fn.alive);
    } catch (error) {
      if (child.exitCode !== null && /setpriv/.test(fn.output())) {
        cannotRunHere(t, `setpriv cannot start a process as UID ${FUNCTION_UID} here: ${fn.output().trim()}`);
        return undefined;
      }
      throw new Error(`${(error as Error).message}\n${fn.output()}`);
    }
    return fn;
  };

  test('a writable folder, and a missing one made at start: said in the start line, no warning', async () => {
    const there = await start({ IMAGE_DIR: scratch });
    const missing = path.join(scratch, 'claim', 'images');
    const made = await start({ IMAGE_DIR: missing });
    const [a, b] = await Promise.all([startOf(there), startOf(made)]);
    assert.deepEqual(a.start.volume, { dir: scratch, state: 'writable', uid: process.getuid?.(), gid: process.getgid?.() });
    assert.equal((b.start.volume as Line).state, 'created');
    assert.ok(fs.statSync(missing).isDirectory());
    assert.deepEqual([...a.warnings, ...b.warnings], []);
    assert.deepEqual(fs.readdirSync(scratch).filter((name) => name.endsWith('.tmp')), [], 'the write probe leaves nothing behind');
  });

  test('a read-only volume: the start line says read-only (EROFS), and one warning before any request says to mount it read-write', async (t) => {
    const dir = readOnlyMount(t, 'read-only');
    if (dir === undefined) return;
    const fn = await start({ IMAGE_DIR: dir });
    const { start: line, warnings } = await startOf(fn);
    assert.deepEqual(line.volume, { dir, state: 'read-only', code: 'EROFS', at: dir, uid: process.getuid?.(), gid: process.getgid?.() });
    assert.equal(warnings.length, 1, `one warning:\n${fn.output()}`);
    assert.equal(warnings[0]!.msg, 'IMAGE_DIR is on a read-only file system; images will live in memory only');
    assert.equal(warnings[0]!.code, 'EROFS');
    assert.match(String(warnings[0]!.fix), /mount the volume read-write at/);
    assert.equal((await getPage(fn.url)).status, 200, 'the page is still served, from memory');
  });

  test('a folder that cannot be made below a read-only file system: not creatable, with the real cause (EROFS, not ENOENT) and the level that failed', async (t) => {
    const mounted = readOnlyMount(t, 'read-only-parent');
    if (mounted === undefined) return;
    const dir = path.join(mounted, 'claim', 'images');
    const fn = await start({ IMAGE_DIR: dir });
    const { start: line, warnings } = await startOf(fn);
    assert.deepEqual(line.volume, { dir, state: 'not creatable', code: 'EROFS', at: path.join(mounted, 'claim'), uid: process.getuid?.(), gid: process.getgid?.() });
    assert.deepEqual(
      warnings.map((w) => [w.msg, w.code]),
      [['IMAGE_DIR cannot be created; images will live in memory only', 'EROFS']],
    );
  });

  test(`a root-owned folder and the function as UID ${FUNCTION_UID} (the course's /tmp/kube and the image): not writable (EACCES), and the fix names chown ${FUNCTION_UID} and fsGroup`, async (t) => {
    const dir = path.join(scratch, 'root-owned');
    fs.mkdirSync(dir, { mode: 0o755 });
    const fn = await startAs12000(t, { IMAGE_DIR: dir });
    if (fn === undefined) return;
    const { start: line, warnings } = await startOf(fn);
    assert.deepEqual(line.volume, { dir, state: 'not writable', code: 'EACCES', at: dir, uid: FUNCTION_UID, gid: FUNCTION_UID });
    assert.equal(warnings.length, 1, `one warning:\n${fn.output()}`);
    assert.equal(warnings[0]!.msg, 'IMAGE_DIR is not writable; images will live in memory only');
    assert.match(String(warnings[0]!.fix), new RegExp(`chown -R ${FUNCTION_UID}:${FUNCTION_UID}`));
    assert.match(String(warnings[0]!.fix), new RegExp(`fsGroup: ${FUNCTION_UID}`));
    assert.equal((await getPage(fn.url)).status, 200, 'the page is still served, from memory');

    const below = await startAs12000(t, { IMAGE_DIR: path.join(dir, 'images') });
    const { start: belowLine } = await startOf(below!);
    assert.deepEqual(belowLine.volume, { dir: path.join(dir, 'images'), state: 'not creatable', code: 'EACCES', at: path.join(dir, 'images'), uid: FUNCTION_UID, gid: FUNCTION_UID });
  });

  test('IMAGE_DIR under /proc, where mkdir answers ENOENT for ever: refused at once with one line naming IMAGE_DIR', async () => {
    const child = spawn(process.execPath, [entry], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, IMAGE_DIR: '/proc/todo-images', IMAGE_URL: source.url, PORT: String(await freePort()) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = watch(child);
    // Node's recursive mkdir spins here at 100 % CPU and never listens; the bound only ends a hang.
    const bound = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const exit = await run.exited;
    clearTimeout(bound);
    assert.deepEqual(exit, { code: 1, signal: null }, `exit code 1, not killed by the bound:\n${run.output()}`);
    const lines = run.output().trim().split('\n');
    assert.equal(lines.length, 1, run.output());
    assert.match(lines[0]!, /^IMAGE_DIR: no folder can be made in \/proc \(mkdir \/proc\/todo-images: ENOENT; .*\), got "\/proc\/todo-images"$/);
  });
});
