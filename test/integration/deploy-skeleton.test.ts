// `faas-cli new hello --lang node22-ts` copies template/node22-ts/function/ into
// ./hello (faas-cli commands/new_function.go: builder.CopyFiles of the template's
// handler folder). That skeleton must build as it is: shrink-wrapped like
// `faas-cli build --shrinkwrap`, the Dockerfile's steps replayed, and the
// fprocess answering a POST as `faas-cli invoke` sends it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { shrinkwrap } from '../../scripts/shrinkwrap.ts';
import { inStage, replayContext, type Replay } from '../support/deploy-dockerfile.ts';
import { repoRoot } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';

const template = path.join(repoRoot, 'template/node22-ts');

describe('a new function from the node22-ts template', { timeout: 300_000 }, () => {
  let project: string;
  let scratch: string | undefined;
  let replay: Replay;
  let child: ChildProcess | undefined;

  before(() => {
    // A user's project: the template folder (as faas-cli template pull leaves it) and the new function.
    project = mkdtempSync(path.join(os.tmpdir(), 'todo-new-fn-'));
    cpSync(template, path.join(project, 'template/node22-ts'), { recursive: true });
    cpSync(path.join(template, 'function'), path.join(project, 'hello'), { recursive: true });
    // A file the handler would read beside itself (docs.openfaas.com/languages/node, "Add static files").
    writeFileSync(path.join(project, 'hello/data.json'), '{"static": true}\n');
    const context = shrinkwrap(project, 'hello', { lang: 'node22-ts', handler: './hello' });
    ({ scratch, replay } = replayContext(context));
  });

  after(() => {
    child?.kill('SIGKILL');
    rmSync(project, { recursive: true, force: true });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('has what the Dockerfile copies from function/, and the welcome message names it', () => {
    const files = readdirSync(path.join(template, 'function')).sort();
    assert.deepEqual(files, ['handler.test.ts', 'handler.ts', 'package-lock.json', 'package.json']);
    const welcome = (parse(readFileSync(path.join(template, 'template.yml'), 'utf8')) as { welcome_message: string }).welcome_message;
    for (const word of ['handler.ts', 'export default (event, context)', 'module.exports', 'RAW_BODY', 'handle(event, context)', 'init()', 'close()', 'maxBodyBytes', 'npm test', 'TEST_ENABLED=false', 'package-lock.json']) {
      assert.ok(welcome.includes(word), `the welcome message mentions ${word}`);
    }
  });

  it("runs the function's npm test in the build, ships its other files and no TypeScript", () => {
    assert.match(replay.ran.join('\n'), /RUN \[ "\$TEST_ENABLED" = "false" \] && echo "skipping tests" \|\| \(cd function && npm test --if-present\)$/m);
    const fn = inStage(replay.final, '/home/app/dist/function');
    assert.equal(readFileSync(path.join(fn, 'data.json'), 'utf8'), '{"static": true}\n');
    assert.deepEqual(readdirSync(fn).filter((f) => f.endsWith('.ts')).sort(), [], 'sources and tests stay out');
    assert.ok(!readdirSync(fn).includes('handler.test.js'), 'the test is not compiled into the image');
  });

  it('a failing test fails the build, and --build-arg TEST_ENABLED=false builds it anyway', () => {
    const broken = mkdtempSync(path.join(os.tmpdir(), 'todo-broken-test-'));
    try {
      cpSync(path.join(project, 'build/hello'), broken, { recursive: true });
      writeFileSync(path.join(broken, 'function/handler.test.ts'), "import { test } from 'node:test';\ntest('fails', () => { throw new Error('a failing test'); });\n");
      assert.throws(() => replayContext(broken, {}, ['build']), /npm test --if-present\) failed[\s\S]*a failing test/);
      const skipped = replayContext(broken, { TEST_ENABLED: 'false' }, ['build']);
      assert.match(skipped.replay.ran.join('\n'), /RUN npx tsc -p tsconfig\.json$/m, 'and went on to compile');
      rmSync(skipped.scratch, { recursive: true, force: true });
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });

  it('builds with the Dockerfile own steps and answers faas-cli invoke (a POST) with JSON', async () => {
    const final = replay.final;
    const app = inStage(final, '/home/app');
    assert.ok(readdirSync(path.join(app, 'dist/function')).includes('handler.js'));
    const port = await freePort();
    const [command, ...args] = final.env.fprocess!.split(' ');
    assert.equal(command, 'node');
    let output = '';
    child = spawn(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', ...final.env, upstream_url: `http://127.0.0.1:${port}`, TMPDIR: scratch! },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    await waitForPort(port, 15_000, () => child?.exitCode === null).catch((error: Error) => {
      throw new Error(`${error.message}\n${output}`);
    });
    const res = await fetch(`http://127.0.0.1:${port}/hello?name=x`, { method: 'POST', body: 'hi there', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 200, output);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), { method: 'POST', path: '/hello', query: { name: 'x' }, body: 'hi there', contentType: 'text/plain' });
  });
});
