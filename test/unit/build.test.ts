// `npm run build` (scripts/build.mjs): what tsc would write, and nothing when
// nothing changed, so that `npm start` starts at once the second time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { build } from '../../scripts/build.mjs';
import { repoRoot } from '../support/fn.ts';

const run = promisify(execFile);

/** Every file under `dir` with its bytes, by relative path. */
function contents(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isFile()) files.set(name, fs.readFileSync(file));
  }
  return files;
}

const quiet = { say: () => undefined };

describe('npm run build', () => {
  let scratch: string;
  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-build-'));
  });
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('writes, file for file, what tsc -p writes for the wrapper and the function', async () => {
    const byTsc = path.join(scratch, 'tsc');
    const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
    await Promise.all([
      run(process.execPath, [tsc, '-p', 'tsconfig.wrapper.json', '--outDir', byTsc], { cwd: repoRoot }),
      run(process.execPath, [tsc, '-p', 'tsconfig.function.json', '--outDir', path.join(byTsc, 'function')], { cwd: repoRoot }),
    ]);
    fs.copyFileSync(path.join(repoRoot, 'template/node22-ts/package.json'), path.join(byTsc, 'package.json'));
    fs.copyFileSync(path.join(repoRoot, 'functions/todo-app/package.json'), path.join(byTsc, 'function/package.json'));

    const ours = path.join(scratch, 'ours');
    const result = build({ outDir: ours, ...quiet });
    assert.equal(result.skipped, false);
    const expected = contents(byTsc);
    const written = contents(ours);
    written.delete('.build.json');
    assert.deepEqual([...written.keys()].sort(), [...expected.keys()].sort(), 'the same files');
    for (const [name, bytes] of expected) assert.ok(written.get(name)!.equals(bytes), `${name} is what tsc writes`);
  });

  describe('in a copy of the sources', () => {
    let root: string;
    let out: string;
    const sources = ['tsconfig.wrapper.json', 'tsconfig.function.json', 'package.json', 'template/node22-ts', 'functions/todo-app'];
    before(() => {
      root = path.join(scratch, 'repo');
      for (const source of sources) {
        fs.cpSync(path.join(repoRoot, source), path.join(root, source), { recursive: true, filter: (from) => !from.includes('node_modules') });
      }
      fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'), 'dir');
      out = path.join(root, 'dist');
    });

    const times = (): Map<string, number> => new Map([...contents(out).keys()].map((name) => [name, fs.statSync(path.join(out, name)).mtimeMs]));

    it('builds once; a second build with nothing changed writes nothing and says nothing', () => {
      const said: string[] = [];
      assert.equal(build({ root, say: (line: string) => said.push(line) }).skipped, false);
      assert.match(said[0]!, /^build: no dist\/\.build\.json yet; compiling/, 'a line before the slow part');
      const before = times();
      said.length = 0;
      assert.equal(build({ root, say: (line: string) => said.push(line) }).skipped, true);
      assert.deepEqual(said, []);
      assert.deepEqual(times(), before, 'no file rewritten');
    });

    it('rebuilds when a source, a config or the folder changes, and drops the output of a source that is gone', () => {
      const page = path.join(root, 'functions/todo-app/page.ts');
      fs.appendFileSync(page, '\nexport const addedForTheTest = 1;\n');
      const said: string[] = [];
      assert.equal(build({ root, say: (line: string) => said.push(line) }).skipped, false);
      assert.match(said[0]!, /functions\/todo-app\/page\.ts changed/);
      assert.match(fs.readFileSync(path.join(out, 'function/page.js'), 'utf8'), /addedForTheTest/);

      const extra = path.join(root, 'functions/todo-app/extra.ts');
      fs.writeFileSync(extra, 'export const extra = 2;\n');
      said.length = 0;
      build({ root, say: (line: string) => said.push(line) });
      assert.match(said[0]!, /files added or removed in functions\/todo-app/);
      assert.ok(fs.existsSync(path.join(out, 'function/extra.js')));
      fs.rmSync(extra);
      build({ root, ...quiet });
      assert.ok(!fs.existsSync(path.join(out, 'function/extra.js')), 'no stale module left for a require to find');

      const config = path.join(root, 'template/node22-ts/tsconfig.json');
      fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('"ES2022"', '"ES2020"'));
      said.length = 0;
      build({ root, say: (line: string) => said.push(line) });
      assert.match(said[0]!, /template\/node22-ts\/tsconfig\.json changed/, 'a config the project extends counts too');

      fs.rmSync(path.join(out, 'function/page.js'));
      assert.equal(build({ root, ...quiet }).skipped, false, 'a missing output is rebuilt');
    });

    it('a syntax error stops the build with TypeScript\'s message, file and line', () => {
      const config = path.join(root, 'functions/todo-app/config.ts');
      fs.appendFileSync(config, '\nexport const broken = ;\n');
      assert.throws(() => build({ root, ...quiet }), /build failed:\n.*functions\/todo-app\/config\.ts\(\d+,\d+\): error TS1109: Expression expected/);
    });
  });
});
