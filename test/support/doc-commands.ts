// Reads the shell command blocks of the guides the way a reader runs them,
// and lists what would fail before the cluster is even asked: a repository
// file that does not exist, a flag the tool does not have, an npm script
// that is not in package.json, a coldstart option the tool does not parse.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { flagsOf } from './cli-flags.ts';
import { repoRoot } from './fn.ts';

export interface Command {
  /** The words, quotes removed. */
  words: string[];
  /** The file and line the command starts on. */
  where: string;
}

/** The ```sh blocks of a markdown text, with the line each starts on. */
export function shellBlocks(markdown: string): Array<{ text: string; line: number }> {
  const blocks: Array<{ text: string; line: number }> = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    blocks.push({ text: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

/**
 * Splits shell text into simple commands: line continuations joined,
 * comments dropped, split at &&, ||, |, ; and &, each $(...) a command of its
 * own; words unquoted.
 */
export function splitCommands(text: string, where: string): Command[] {
  const commands: Command[] = [];
  const joined = text.replace(/\\\n/g, ' ');
  const lines = joined.split('\n');
  lines.forEach((line, index) => {
    const at = `${where}+${index}`;
    let words: string[] = [];
    let word = '';
    let inWord = false;
    const flushWord = (): void => {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    };
    const flushCommand = (): void => {
      flushWord();
      if (words.length > 0) commands.push({ words, where: at });
      words = [];
    };
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (c === "'") {
        const end = line.indexOf("'", i + 1);
        word += line.slice(i + 1, end === -1 ? undefined : end);
        inWord = true;
        i = end === -1 ? line.length : end;
      } else if (c === '"') {
        const end = line.indexOf('"', i + 1);
        word += line.slice(i + 1, end === -1 ? undefined : end);
        inWord = true;
        i = end === -1 ? line.length : end;
      } else if (c === '$' && line[i + 1] === '(') {
        let depth = 0;
        let j = i + 1;
        for (; j < line.length; j++) {
          if (line[j] === '(') depth++;
          if (line[j] === ')' && --depth === 0) break;
        }
        commands.push(...splitCommands(line.slice(i + 2, j), at));
        word += '$SUBST';
        inWord = true;
        i = j;
      } else if (c === '#' && !inWord) {
        break;
      } else if (/\s/.test(c)) {
        flushWord();
      } else if (c === '|' || c === ';' || c === '&') {
        if ((c === '&' || c === '|') && line[i + 1] === c) i++;
        flushCommand();
      } else {
        word += c;
        inWord = true;
      }
    }
    flushCommand();
  });
  return commands;
}

const REPO_PATH = /^(\.\/)?((k8s-volumes|template|functions|scripts|docs|bench|test|build)\/\S*|stack\.yml|package\.json)$/;

interface PackageJson {
  scripts: Record<string, string>;
}

export interface CheckContext {
  /** What `npm run coldstart` parses: its option names (long) and their short letters. */
  coldstart: { options: Record<string, { short?: string }>; modes: readonly string[] };
  /** Flags used per `kubectl <verb>`, filled in for a later check against a live kubectl. */
  kubectlUsed?: Map<string, Set<string>>;
}

/** Flag names in words (up to a lone --): "--port" from "--port=5000", "-i" and "-t" from "-it" when "-it" is unknown. */
function flagsIn(words: string[], known?: Set<string>): string[] {
  const flags: string[] = [];
  for (const w of words) {
    if (w === '--') break;
    if (!w.startsWith('-') || w === '-') continue;
    const name = w.split('=')[0]!;
    if (/^-[a-zA-Z]{2,}$/.test(name) && !(known?.has(name) ?? false)) flags.push(...[...name.slice(1)].map((c) => `-${c}`));
    else flags.push(name);
  }
  return flags;
}

/** Problems in one document's commands, in order; `file` names it in messages. */
export function checkCommands(markdown: string, file: string, context: CheckContext): string[] {
  const problems: string[] = [];
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as PackageJson;
  let shrinkwrapped = false;
  for (const block of shellBlocks(markdown)) {
    for (const { words, where } of splitCommands(block.text, `${file}:${block.line}`)) {
      const args = words.filter((w, i) => !(i === 0 && /^[A-Z_]+=/.test(w)));
      const [tool, ...rest] = args;
      if (!tool) continue;
      for (const w of args) {
        const value = w.includes('=') && w.startsWith('-') ? w.slice(w.indexOf('=') + 1) : w;
        if (!REPO_PATH.test(value)) continue;
        if (value.replace(/^\.\//, '').startsWith('build/')) {
          if (!shrinkwrapped) problems.push(`${where}: ${value} exists only after npm run shrinkwrap, which comes later or not at all`);
        } else if (!existsSync(path.join(repoRoot, value))) {
          problems.push(`${where}: ${value} does not exist in the repository`);
        }
      }
      if (tool === 'npm') {
        if (rest[0] === 'run') {
          const script = rest[1];
          if (!script || !(script in pkg.scripts)) problems.push(`${where}: npm run ${script}: no such script in package.json`);
          if (script === 'shrinkwrap') shrinkwrapped = true;
          if (script === 'coldstart') problems.push(...checkColdstart(rest.slice(rest.indexOf('--') + 1), rest.includes('--'), where, context));
        } else if (!['ci', 'test', 'start', 'install'].includes(rest[0] ?? '')) {
          problems.push(`${where}: npm ${rest[0]}: not a command the guides expect`);
        }
        continue;
      }
      if (tool === 'faas-cli' || tool === 'k3d' || tool === 'kubectl') {
        const twoWords = tool === 'k3d' || (tool === 'kubectl' && ['rollout', 'set'].includes(rest[0] ?? ''));
        const command = twoWords ? `${rest[0]} ${rest[1]}` : (rest[0] ?? '');
        const known = flagsOf(tool, command);
        if (!known) {
          problems.push(`${where}: ${tool} ${command}: not in the flag table (test/support/cli-flags.ts)`);
          continue;
        }
        const used = flagsIn(rest, known);
        for (const flag of used) if (!known.has(flag)) problems.push(`${where}: ${tool} ${command} has no flag ${flag}`);
        if (tool === 'kubectl' && context.kubectlUsed) {
          const set = context.kubectlUsed.get(command) ?? new Set<string>();
          for (const flag of used) set.add(flag);
          context.kubectlUsed.set(command, set);
        }
        // A file given to -f/-k/--patch-file must exist, unless it is a URL.
        for (let i = 0; i < rest.length - 1; i++) {
          const flag = rest[i]!;
          if (!['-f', '-k', '--filename', '--kustomize', '--patch-file', '--yaml'].includes(flag)) continue;
          const value = rest[i + 1]!;
          if (REPO_PATH.test(value)) continue; // checked above, with every word
          if (!/^https?:\/\//.test(value) && !existsSync(path.join(repoRoot, value))) problems.push(`${where}: ${flag} ${value} does not exist in the repository`);
        }
      }
    }
  }
  return problems;
}

function checkColdstart(args: string[], separated: boolean, where: string, context: CheckContext): string[] {
  if (!separated) return args.length > 2 ? [`${where}: npm run coldstart without -- passes the options to npm, not to the tool`] : [];
  const problems: string[] = [];
  const { options, modes } = context.coldstart;
  const shorts = new Set<string>(Object.values(options).flatMap((o) => (o.short ? [`-${o.short}`] : [])));
  const first = args[0];
  if (first && !first.startsWith('-') && !modes.includes(first)) problems.push(`${where}: coldstart has no mode ${first}`);
  for (const w of args) {
    if (!w.startsWith('-')) continue;
    const name = w.split('=')[0]!;
    const known = name.startsWith('--') ? name.slice(2) in options : shorts.has(name);
    if (!known) problems.push(`${where}: coldstart has no option ${name}`);
  }
  return problems;
}

/** `code` spans of a markdown text that name a repository path, each with its line. */
export function pathSpans(markdown: string): Array<{ path: string; line: number }> {
  const found: Array<{ path: string; line: number }> = [];
  markdown.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/`([^`\s]+)`/g)) {
      if (REPO_PATH.test(m[1]!)) found.push({ path: m[1]!, line: i + 1 });
    }
  });
  return found;
}
