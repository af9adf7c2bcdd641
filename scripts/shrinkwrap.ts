// `npm run shrinkwrap [-- -f stack.yml] [name...]`: lays out build/<name>/ the
// way `faas-cli build --shrinkwrap` does, without Docker or faas-cli: the
// template's files at the root of the build context, the function's handler
// folder copied into function/. Any `docker build build/<name>` then builds
// what `faas-cli build` would.
//
// Like faas-cli (builder/build.go, createBuildTemplate): the folder is cleared
// first; the handler's top-level `build` and `template` entries are skipped;
// everything else is copied as is, node_modules included, so the template's
// .dockerignore is what keeps host-built files out of the image.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export interface StackFunction {
  lang: string;
  handler: string;
  image?: string;
}

export interface Stack {
  version?: string;
  functions: Record<string, StackFunction>;
}

const SKIPPED = new Set(['build', 'template']);

export function readStack(file: string): Stack {
  const stack = parse(readFileSync(file, 'utf8')) as Stack;
  if (!stack?.functions || typeof stack.functions !== 'object') {
    throw new Error(`${file}: no functions`);
  }
  return stack;
}

/** Lays out build/<name>/ under root and returns its path. */
export function shrinkwrap(root: string, name: string, fn: StackFunction): string {
  const template = path.join(root, 'template', fn.lang);
  if (!existsSync(path.join(template, 'template.yml'))) {
    throw new Error(`${name}: language template ${fn.lang} not found in ${path.relative(root, template)}/`);
  }
  const handler = path.resolve(root, fn.handler);
  if (!existsSync(handler) || !statSync(handler).isDirectory()) {
    throw new Error(`${name}: handler ${fn.handler} is not a folder`);
  }
  const context = path.join(root, 'build', name);
  rmSync(context, { recursive: true, force: true });
  mkdirSync(path.join(context, 'function'), { recursive: true });
  cpSync(template, context, { recursive: true, dereference: true });
  for (const entry of readdirSync(handler)) {
    if (SKIPPED.has(entry)) continue;
    cpSync(path.join(handler, entry), path.join(context, 'function', entry), { recursive: true, dereference: true });
  }
  return context;
}

function main(argv: string[]): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  let file = path.join(root, 'stack.yml');
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-f' || arg === '--yaml') file = path.resolve(argv[++i] ?? '');
    else names.push(arg);
  }
  const stack = readStack(file);
  for (const name of names.length > 0 ? names : Object.keys(stack.functions)) {
    const fn = stack.functions[name];
    if (!fn) throw new Error(`${name}: not in ${path.relative(root, file)}`);
    const context = shrinkwrap(root, name, fn);
    process.stdout.write(`${name} shrink-wrapped to ${path.relative(root, context)}/\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`shrinkwrap: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
