#!/usr/bin/env node
// `npm run build`, and the first step of `npm start`: the wrapper and the function,
// from TypeScript into dist/ as the image lays them out (dist/index.js,
// dist/function/*.js, each with its package.json).
//
// Every file goes through TypeScript's own emitter, one file at a time
// (ts.transpileModule with the options tsconfig.wrapper.json and
// tsconfig.function.json resolve to): the JavaScript `tsc -p` writes, byte for
// byte (test/unit/build.test.ts compares the two), in about half a second where
// tsc takes 5 to 15 s on a busy 2-core machine. The difference is the type
// check, and it has its own places: `npm test` type-checks every file
// (`npm run typecheck`, with isolatedModules, which is what makes one-file-at-a-time
// emit exact), and the image's build runs tsc.
//
// A build that would change nothing does nothing, and loads no compiler:
// dist/.build.json records what the last build read (a sha256 of each source,
// config and package.json, the listing of each folder a config globs, the
// TypeScript version) and what it wrote.
// Plain JavaScript: it runs before anything is built, on any Node.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = '.build.json';
/** The two programs of the image, each with the package.json that tells Node its module system. */
const PROJECTS = [
  { config: 'tsconfig.wrapper.json', packageJson: 'template/node22-ts/package.json' },
  { config: 'tsconfig.function.json', packageJson: 'functions/todo-app/package.json' },
];

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const listing = (dir) => (existsSync(dir) ? readdirSync(dir).sort() : []);

function readStamp(outDir) {
  try {
    return JSON.parse(readFileSync(path.join(outDir, STAMP), 'utf8'));
  } catch {
    return undefined;
  }
}

/** What changed since the build that wrote `stamp`, in a few words; undefined when nothing did. */
function changeSince(stamp, root, outDir, typescriptVersion) {
  if (stamp === undefined) return `no ${path.relative(root, outDir) || '.'}/${STAMP} yet`;
  if (stamp.typescript !== typescriptVersion) return `TypeScript ${stamp.typescript} -> ${typescriptVersion}`;
  for (const [file, hash] of Object.entries(stamp.inputs)) {
    const at = path.join(root, file);
    if (!existsSync(at) || sha256(at) !== hash) return `${file} changed`;
  }
  for (const [dir, names] of Object.entries(stamp.dirs)) {
    if (listing(path.join(root, dir)).join('\n') !== names.join('\n')) return `files added or removed in ${dir}`;
  }
  for (const file of stamp.outputs) if (!existsSync(path.join(outDir, file))) return `${path.relative(root, path.join(outDir, file))} is missing`;
  return undefined;
}

/**
 * Builds into `outDir` (default dist/) unless nothing changed. `say` gets one line
 * before the slow part (loading TypeScript and emitting) and one after it.
 * Throws on a syntax error, with TypeScript's own messages.
 */
export function build({ root = repoRoot, outDir = path.join(root, 'dist'), say = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const require = createRequire(path.join(root, 'package.json'));
  const typescriptVersion = JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')).version;
  const previous = readStamp(outDir);
  const change = changeSince(previous, root, outDir, typescriptVersion);
  if (change === undefined) return { compiled: 0, skipped: true, ms: 0 };

  const started = performance.now();
  say(`build: ${change}; compiling the wrapper and the function into ${path.relative(root, outDir) || '.'}/ (no type check here: npm test does it)`);
  const ts = require('typescript');
  const stamp = { typescript: typescriptVersion, inputs: {}, dirs: {}, outputs: [] };
  const rel = (file) => path.relative(root, file);
  const problems = [];
  const files = [];
  for (const project of PROJECTS) {
    const extended = new Map();
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, project.config), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => problems.push(diagnostic),
    }, extended);
    if (parsed === undefined || parsed.errors.length > 0) {
      problems.push(...(parsed?.errors ?? []));
      continue;
    }
    // The image's layout: the wrapper at the top of outDir, the function in outDir/function.
    const projectOut = path.join(outDir, path.relative(path.join(root, 'dist'), parsed.options.outDir));
    for (const config of [path.join(root, project.config), ...extended.keys()]) stamp.inputs[rel(config)] = sha256(config);
    for (const dir of Object.keys(parsed.wildcardDirectories ?? {})) stamp.dirs[rel(dir)] = listing(dir);
    for (const source of parsed.fileNames) {
      const out = ts.transpileModule(readFileSync(source, 'utf8'), { fileName: source, compilerOptions: parsed.options, reportDiagnostics: true });
      problems.push(...(out.diagnostics ?? []));
      const target = path.join(projectOut, path.relative(parsed.options.rootDir, source).replace(/\.ts$/, '.js'));
      files.push({ target, text: out.outputText });
      stamp.inputs[rel(source)] = sha256(path.join(source));
    }
    const packageJson = path.join(root, project.packageJson);
    files.push({ target: path.join(projectOut, 'package.json'), text: readFileSync(packageJson) });
    stamp.inputs[project.packageJson] = sha256(packageJson);
  }
  if (problems.length > 0) {
    const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
    throw new Error(`build failed:\n${ts.formatDiagnostics(problems, host).trimEnd()}`);
  }
  for (const { target, text } of files) {
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
    stamp.outputs.push(path.relative(outDir, target));
  }
  // A source that is gone leaves no stale module behind for a require to find.
  for (const old of previous?.outputs ?? []) if (!stamp.outputs.includes(old)) rmSync(path.join(outDir, old), { force: true });
  writeFileSync(path.join(outDir, STAMP), `${JSON.stringify(stamp, null, 1)}\n`);
  const ms = performance.now() - started;
  say(`build: ${files.length} files written in ${(ms / 1000).toFixed(1)} s`);
  return { compiled: files.length, skipped: false, ms };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    build();
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  }
}
