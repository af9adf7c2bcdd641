// A private build for one bench run: the function compiled by `npm run build`'s
// own code (scripts/build.mjs, which writes what tsc writes), the floor (CommonJS)
// and the bare ESM server, in a temporary folder. A concurrent `npm run build`
// (which rewrites dist/) or a test run in the same checkout cannot change the code under
// a measurement.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build as buildFunction } from '../scripts/build.mjs';
import { repoRoot } from '../test/support/fn.ts';

export interface Build {
  dir: string;
  /** `node <functionEntry>`: the container's fprocess. */
  functionEntry: string;
  /** bench/floor.cts and page.ts as CommonJS. */
  floorEntry: string;
  /** bench/bare-esm.ts and page.ts as ES modules. */
  esmEntry: string;
  ms: number;
  remove(): void;
}

/**
 * A bare server and page.ts, type-stripped one file at a time (no checking: `npm run
 * typecheck` does that) into a folder whose package.json says which module system they are.
 */
async function transpile(files: string[], outDir: string, type: 'commonjs' | 'module'): Promise<void> {
  const ts = (await import('typescript')).default;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'package.json'), JSON.stringify({ type, private: true }));
  const module = type === 'commonjs' ? ts.ModuleKind.CommonJS : ts.ModuleKind.ESNext;
  for (const file of files) {
    const out = ts.transpileModule(readFileSync(path.join(repoRoot, file), 'utf8'), {
      fileName: file,
      compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true, rewriteRelativeImportExtensions: true },
    });
    const target = path.join(outDir, file.replace(/\.c?ts$/, '.js'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, out.outputText);
  }
}

export async function build(): Promise<Build> {
  const started = performance.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'todo-app-bench-'));
  // The repository's node_modules for pino, got, sharp.
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const app = path.join(dir, 'app');
  try {
    buildFunction({ outDir: app, say: () => undefined });
    await Promise.all([
      transpile(['bench/floor.cts', 'functions/todo-app/page.ts', 'functions/todo-app/caching.ts'], path.join(dir, 'floor'), 'commonjs'),
      transpile(['bench/bare-esm.ts', 'functions/todo-app/page.ts', 'functions/todo-app/caching.ts'], path.join(dir, 'esm'), 'module'),
    ]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    functionEntry: path.join(app, 'index.js'),
    floorEntry: path.join(dir, 'floor/bench/floor.js'),
    esmEntry: path.join(dir, 'esm/bench/bare-esm.js'),
    ms: performance.now() - started,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
