// The built wrapper (dist/*.js) with another function in place of todo-app, in a
// temporary folder laid out as the image lays it out: what faas-cli build makes of
// another handler. Tests start it with startFunction({...}, { entry }).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './fn.ts';

export interface WrapperRoot {
  dir: string;
  /** dist/index.js's copy: the entry to start. */
  entry: string;
  remove(): void;
}

/**
 * handler: the function's files, by name (handler.js at least); type: its package.json's
 * "type". Default: the plain JavaScript fixture of test/fixtures/function.
 */
export function wrapperWith(files?: Record<string, string>, type: 'module' | 'commonjs' = 'module'): WrapperRoot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-wrapper-fixture-'));
  for (const file of fs.readdirSync(path.join(repoRoot, 'dist'))) {
    if (file.endsWith('.js')) fs.copyFileSync(path.join(repoRoot, 'dist', file), path.join(dir, file));
  }
  fs.copyFileSync(path.join(repoRoot, 'template/node22-ts/package.json'), path.join(dir, 'package.json'));
  // The template's runtime dependencies (body-parser), where the image has them: beside dist/.
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  fs.mkdirSync(path.join(dir, 'function'));
  const handler = files ?? { 'handler.js': fs.readFileSync(path.join(repoRoot, 'test/fixtures/function/handler.js'), 'utf8') };
  for (const [name, text] of Object.entries(handler)) fs.writeFileSync(path.join(dir, 'function', name), text);
  fs.writeFileSync(path.join(dir, 'function/package.json'), `${JSON.stringify({ type })}\n`);
  return { dir, entry: path.join(dir, 'index.js'), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
