// `npm run shrinkwrap` lays out the build context as `faas-cli build
// --shrinkwrap` does (faas-cli builder/build.go, createBuildTemplate): the
// folder cleared, the template's files at its root, the handler's in
// function/, the handler's top-level build/ and template/ skipped.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { shrinkwrap } from '../../scripts/shrinkwrap.ts';

function write(file: string, text = file): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

describe('npm run shrinkwrap', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'todo-shrinkwrap-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  write(path.join(root, 'template/node22-ts/template.yml'), 'language: node22-ts\n');
  write(path.join(root, 'template/node22-ts/Dockerfile'));
  write(path.join(root, 'template/node22-ts/index.ts'));
  write(path.join(root, 'template/node22-ts/.dockerignore'));
  write(path.join(root, 'functions/fn/handler.ts'));
  write(path.join(root, 'functions/fn/package.json'));
  write(path.join(root, 'functions/fn/lib/util.ts'));
  write(path.join(root, 'functions/fn/build/old'));
  write(path.join(root, 'functions/fn/template/x'));

  it('puts the template at the root of build/<name>/ and the handler folder in function/, skipping build/ and template/', () => {
    write(path.join(root, 'build/fn/stale'));
    const context = shrinkwrap(root, 'fn', { lang: 'node22-ts', handler: './functions/fn' });
    assert.equal(context, path.join(root, 'build/fn'));
    for (const file of ['template.yml', 'Dockerfile', 'index.ts', '.dockerignore']) assert.ok(existsSync(path.join(context, file)), file);
    assert.equal(readFileSync(path.join(context, 'function/lib/util.ts'), 'utf8'), path.join(root, 'functions/fn/lib/util.ts'));
    assert.ok(existsSync(path.join(context, 'function/handler.ts')));
    assert.ok(existsSync(path.join(context, 'function/package.json')));
    assert.ok(!existsSync(path.join(context, 'function/build')));
    assert.ok(!existsSync(path.join(context, 'function/template')));
    assert.ok(!existsSync(path.join(context, 'stale')), 'the folder is cleared first');
  });

  it('refuses a language with no template and a handler that is not a folder', () => {
    assert.throws(() => shrinkwrap(root, 'fn', { lang: 'node18', handler: './functions/fn' }), /node18 not found/);
    assert.throws(() => shrinkwrap(root, 'fn', { lang: 'node22-ts', handler: './functions/none' }), /not a folder/);
  });
});
