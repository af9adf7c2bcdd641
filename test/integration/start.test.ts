// `npm start`, as a newcomer runs it: the function's own exit code and every
// error line reach them, in a terminal, through a pipe and in a file; it says
// where it serves; Ctrl-C stops it cleanly. scripts/start.mjs is what npm start
// runs after building; one case goes through npm itself.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, repoRoot, watch } from '../support/fn.ts';
import { freePort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const startScript = path.join(repoRoot, 'scripts/start.mjs');

describe('npm start', { timeout: 120_000 }, () => {
  let source: ImageSource;
  let dir: string;
  let busy: net.Server;
  let busyPort: number;
  before(async () => {
    source = await startSource();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-start-'));
    busy = net.createServer().listen(0);
    await new Promise((r) => busy.once('listening', r));
    busyPort = (busy.address() as net.AddressInfo).port;
  });
  after(async () => {
    busy.close();
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: os.homedir(), IMAGE_DIR: dir, IMAGE_URL: source.url, ...extra });

  it('a taken port: exit code 1 and one line naming PORT, through a pipe and in a file', () => {
    const piped = spawnSync(process.execPath, [startScript], { cwd: repoRoot, env: env({ PORT: String(busyPort) }), encoding: 'utf8' });
    assert.equal(piped.status, 1);
    assert.match(piped.stderr, new RegExp(`^PORT: port ${busyPort} is in use by another process`, 'm'));
    assert.doesNotMatch(piped.stdout, /todo-app started/, 'no start line for a start that failed');

    const file = path.join(dir, 'start.log');
    const redirected = spawnSync('sh', ['-c', `"${process.execPath}" "${startScript}" > "${file}" 2>&1`], { cwd: repoRoot, env: env({ PORT: String(busyPort) }) });
    assert.equal(redirected.status, 1);
    assert.match(fs.readFileSync(file, 'utf8'), new RegExp(`^PORT: port ${busyPort} is in use by another process`, 'm'));
  });

  it('a bad setting: exit code 1 and the line naming it, through npm start itself', () => {
    const run = spawnSync('npm', ['start', '--silent'], { cwd: repoRoot, env: env({ IMAGE_TTL_SECONDS: '-5' }), encoding: 'utf8', timeout: 90_000 });
    assert.equal(run.status, 1, `${run.stdout}${run.stderr}`);
    assert.match(run.stderr, /^IMAGE_TTL_SECONDS: must be a whole number from 1 to 31536000, got "-5"$/m);
  });

  it('serving: JSON lines through a pipe, the start line names the URL; Ctrl-C stops it with exit code 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [startScript], { cwd: repoRoot, env: env({ PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
    const run = watch(child);
    try {
      const started = await eventually(() => run.logs().find((line) => line.msg === 'todo-app started'), 10_000, `the start line:\n${run.output()}`);
      assert.equal(started.url, `http://localhost:${port}`);
      assert.equal((await fetch(`http://localhost:${port}/`)).status, 200);
      child.kill('SIGINT');
      assert.deepEqual(await run.exited, { code: 0, signal: null });
      assert.ok(run.logs().some((line) => line.msg === 'stopping' && line.signal === 'SIGINT'), 'the log names the signal it got');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('in a terminal: the lines are pretty-printed, the URL among them', async () => {
    const port = await freePort();
    // script(1) gives the process a terminal, as a newcomer's shell does.
    const child = spawn('script', ['-qefc', `"${process.execPath}" "${startScript}"`, '/dev/null'], { cwd: repoRoot, env: env({ PORT: String(port) }), stdio: ['pipe', 'pipe', 'pipe'] });
    const run = watch(child);
    try {
      await eventually(() => /todo-app started/.test(run.output()), 10_000, `a pretty start line:\n${run.output()}`);
      const text = run.output().replace(/\u001b\[[0-9;]*m/g, '');
      assert.match(text, /INFO.*todo-app started/);
      assert.match(text, new RegExp(`url: "http://localhost:${port}"`));
      assert.doesNotMatch(text, /^\{"level"/m, 'not raw JSON');
    } finally {
      // The terminal goes away: start.mjs gets SIGHUP and takes the function with it.
      child.kill('SIGKILL');
      await eventually(async () => !(await fetch(`http://localhost:${port}/`).then(() => true, () => false)), 5000, 'the function stopped with its terminal');
    }
  });
});
