// A user of another project adopts node22-ts the way people adopt a template,
// with the real faas-cli (FAAS_CLI_BIN; skipped without one): `faas-cli
// template pull` from this repository (a local git repository here: faas-cli
// clones a local path as it clones a URL, commands/fetch_templates.go
// pullTemplate), `faas-cli new --lang node22-ts`, `faas-cli build
// --shrinkwrap`, then the Dockerfile's own steps replayed on that build
// context and the function answering as `faas-cli invoke` would ask.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { inStage, replayContext, type Replay } from '../support/deploy-dockerfile.ts';
import { repoRoot } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';

const faasCli = process.env.FAAS_CLI_BIN;

function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('faas-cli template pull, new, build --shrinkwrap with node22-ts', { skip: faasCli ? false : 'set FAAS_CLI_BIN to a faas-cli binary to run it', timeout: 300_000 }, () => {
  let scratch: string;
  let project: string;
  let replay: Replay;
  let replayScratch: string | undefined;
  let child: ChildProcess | undefined;
  const cli = (...args: string[]): string =>
    execFileSync(faasCli!, args, { cwd: project, env: { PATH: process.env.PATH ?? '', HOME: path.join(scratch, 'home'), NO_COLOR: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'todo-faas-cli-'));
    mkdirSync(path.join(scratch, 'home'));
    // This repository's template folder as it is now, committed in a repository of its own.
    const repository = path.join(scratch, 'templates');
    mkdirSync(path.join(repository, 'template'), { recursive: true });
    cpSync(path.join(repoRoot, 'template/node22-ts'), path.join(repository, 'template/node22-ts'), { recursive: true });
    const git = (...args: string[]): string => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd: repository, encoding: 'utf8' });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'node22-ts');
    project = path.join(scratch, 'project');
    mkdirSync(project);
  });

  after(() => {
    child?.kill('SIGKILL');
    if (replayScratch) rmSync(replayScratch, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it('template pull writes template/node22-ts as the repository has it', () => {
    const out = cli('template', 'pull', path.join(scratch, 'templates'));
    assert.match(out, /Wrote 1 template\(s\) : \[node22-ts\]/);
    const pulled = filesOf(path.join(project, 'template/node22-ts')).filter((f) => f !== 'meta.json');
    assert.deepEqual(pulled, filesOf(path.join(repoRoot, 'template/node22-ts')));
  });

  it('new --lang node22-ts writes the skeleton and a stack file, and prints the welcome message', () => {
    const out = cli('new', 'hello', '--lang', 'node22-ts');
    assert.match(out, /export default \(event, context\)/);
    assert.deepEqual(filesOf(path.join(project, 'hello')), filesOf(path.join(repoRoot, 'template/node22-ts/function')));
    const stack = parse(readFileSync(path.join(project, 'stack.yaml'), 'utf8')) as { functions: Record<string, { lang: string; handler: string }> };
    assert.deepEqual(stack.functions.hello, { lang: 'node22-ts', handler: './hello', image: 'hello:latest' });
  });

  it('build --shrinkwrap lays out build/hello, whose Dockerfile builds and answers a POST', async () => {
    cli('build', '--shrinkwrap');
    const context = path.join(project, 'build/hello');
    assert.ok(filesOf(context).includes('function/handler.ts'));
    ({ scratch: replayScratch, replay } = replayContext(context));
    assert.match(replay.ran.join('\n'), /npm test --if-present/);
    const app = inStage(replay.final, '/home/app');
    const port = await freePort();
    const [command, ...args] = replay.final.env.fprocess!.split(' ');
    assert.equal(command, 'node');
    let output = '';
    child = spawn(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', ...replay.final.env, upstream_url: `http://127.0.0.1:${port}`, TMPDIR: replayScratch! },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    await waitForPort(port, 15_000, () => child?.exitCode === null).catch((error: Error) => {
      throw new Error(`${error.message}\n${output}`);
    });
    const res = await fetch(`http://127.0.0.1:${port}/?name=x`, { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 200, output);
    assert.deepEqual(await res.json(), { method: 'POST', path: '/', query: { name: 'x' }, body: { a: 1 }, contentType: 'application/json' });
  });
});
