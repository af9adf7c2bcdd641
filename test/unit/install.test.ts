// `npm ci` on a fresh machine prints no warning. npm 11 runs no dependency's
// install script unless package.json's allowScripts says so, and warns about each
// one it skipped that allowScripts does not name: every package the lockfiles
// mark with an install script must be named there, allowed or denied.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../support/fn.ts';

const json = (file: string): Record<string, any> => JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8'));

describe('npm ci is quiet', () => {
  for (const dir of ['.', 'functions/todo-app', 'template/node22-ts']) {
    it(`${dir}: every dependency with an install script is named in allowScripts`, () => {
      const lock = json(path.join(dir, 'package-lock.json'));
      const allow = (json(path.join(dir, 'package.json')).allowScripts ?? {}) as Record<string, boolean>;
      const scripted = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
        .filter(([, p]) => p.hasInstallScript)
        .map(([key]) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
      for (const name of scripted) assert.ok(name in allow, `${name} has an install script: npm install-scripts approve|deny ${name}`);
    });
  }

  it("esbuild's postinstall is denied, and tsx still finds esbuild's binary in its platform package", async () => {
    assert.equal(json('package.json').allowScripts.esbuild, false);
    const { transform } = await import('esbuild');
    assert.equal((await transform('let x: number = 1', { loader: 'ts' })).code.trim(), 'let x = 1;');
  });
});
