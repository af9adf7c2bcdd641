// Reads a Dockerfile and replays the parts of it that run on this machine
// without Docker: each stage gets a folder standing in for its root file
// system, WORKDIR/ENV/ARG/COPY are followed, and the RUN steps made only of
// npm, npx, tar, find and the shell's own words, on relative paths, are run as
// written. The test then breaks when the Dockerfile does.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Instruction {
  keyword: string; // upper case: FROM, RUN, COPY...
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      const next = lines[i]!;
      if (!/^\s*#/.test(next)) line += next.trim();
    }
    const match = /^\s*(\S+)\s*(.*)$/.exec(line);
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: start + 1 });
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ image: words[0]!, name: as === -1 ? String(stages.length) : words[as + 1]!, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return stages;
}

/** ENV k=v k2="v 2" or the old form ENV k v. */
export function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [key, ...rest] = args.split(/\s+/);
    env[key!] = unquote(rest.join(' '));
    return env;
  }
  const pair = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const match of args.matchAll(pair)) env[match[1]!] = unquote(match[2]!);
  return env;
}

function unquote(value: string): string {
  if (/^".*"$/.test(value)) return value.slice(1, -1).replace(/\\(.)/g, '$1');
  if (/^'.*'$/.test(value)) return value.slice(1, -1);
  return value;
}

export interface StageState {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
}

export interface Replay {
  stages: Map<string, StageState>;
  final: StageState;
  ran: string[];
  skipped: string[];
}

export interface ReplayOptions {
  /** The build context (build/<fn>/). */
  context: string;
  /** Where the stages' stand-in root folders go. */
  scratch: string;
  /** Environment for the RUN commands, on top of the stage's ENV. */
  env: Record<string, string>;
  /** Which RUN commands to run here; the rest are listed as skipped. */
  runnable?: (command: string) => boolean;
  /** --build-arg values, over each ARG's default. */
  buildArgs?: Record<string, string>;
  /** Which stages to replay (default: those FROM a node image); COPY --from another is skipped. */
  replayable?: (stage: Stage) => boolean;
}

/** Programs a replayed RUN may use: npm and the shell's own words, tar and find for files. */
const HERE = new Set(['npm', 'npx', 'cd', 'echo', '[', 'tar', 'find', 'mkdir']);

/** Every command of the RUN is one of those, and no argument names a path outside the stage's folder. */
export function runsHere(command: string): boolean {
  const parts = command
    .split(/&&|\|\||[|;]|(?<!\\)[()]/)
    .map((part) => part.trim())
    .filter(Boolean);
  return parts.every((part) => HERE.has(part.split(/\s+/)[0]!)) && !/(^|\s)\//.test(command);
}

/** Simple .dockerignore patterns: paths (and their contents) relative to the context. */
function ignored(context: string): (relative: string) => boolean {
  const file = path.join(context, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.replace(/^\/+|\/+$/g, ''))
    : [];
  return (relative) =>
    patterns.some((p) => {
      if (p.startsWith('*.')) return relative.endsWith(p.slice(1));
      return relative === p || relative.startsWith(`${p}/`);
    });
}

export function replayDockerfile(stages: Stage[], options: ReplayOptions): Replay {
  const runnable = options.runnable ?? runsHere;
  const isIgnored = ignored(options.context);
  const states = new Map<string, StageState>();
  const ran: string[] = [];
  const skipped: string[] = [];
  let final: StageState | undefined;
  const replayable = options.replayable ?? ((stage: Stage) => /^node:/.test(stage.image));
  for (const stage of stages) {
    if (!replayable(stage)) {
      skipped.push(`${stage.name}: FROM ${stage.image}`);
      continue;
    }
    const state: StageState = { root: path.join(options.scratch, stage.name), workdir: '/', env: {}, user: undefined };
    mkdirSync(state.root, { recursive: true });
    const inRoot = (p: string): string => path.join(state.root, path.posix.resolve(state.workdir, p));
    for (const { keyword, args, line } of stage.instructions) {
      switch (keyword) {
        case 'WORKDIR':
          state.workdir = path.posix.resolve(state.workdir, args);
          mkdirSync(inRoot('.'), { recursive: true });
          break;
        case 'ENV':
          Object.assign(state.env, parseEnv(args));
          break;
        case 'USER':
          state.user = args;
          break;
        case 'ARG': {
          // ARG NAME=default: in the RUN steps' environment, a --build-arg over the default.
          const [name, ...value] = args.split('=');
          if (value.length > 0 || options.buildArgs?.[name!] !== undefined) state.env[name!] = options.buildArgs?.[name!] ?? value.join('=');
          break;
        }
        case 'COPY': {
          const words = args.split(/\s+/);
          const flags = words.filter((w) => w.startsWith('--'));
          const paths = words.filter((w) => !w.startsWith('--'));
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          const dest = paths.pop()!;
          let sourceRoot = options.context;
          if (from !== undefined) {
            const source = states.get(from);
            if (!source) {
              skipped.push(`${stage.name}:${line} COPY ${args} (image ${from} is not built here)`);
              break;
            }
            sourceRoot = source.root;
          }
          // Docker's COPY takes wildcards (filepath.Match): "*.ts" is every .ts file at the root.
          const sources = paths.flatMap((src) => {
            if (!src.includes('*')) return [src];
            const dir = path.posix.dirname(src);
            const pattern = new RegExp(`^${path.posix.basename(src).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
            const found = existsSync(path.join(sourceRoot, dir)) ? readdirSync(path.join(sourceRoot, dir)).filter((name) => pattern.test(name)) : [];
            if (found.length === 0) throw new Error(`Dockerfile:${line} COPY: ${src} matches nothing in ${from ?? 'the build context'}`);
            return found.map((name) => path.posix.join(dir, name));
          });
          const toDir = dest.endsWith('/') || sources.length > 1 || paths.some((src) => src.includes('*'));
          for (const src of sources) {
            const from_ = path.join(sourceRoot, src);
            if (!existsSync(from_)) throw new Error(`Dockerfile:${line} COPY: ${src} not found in ${from ?? 'the build context'}`);
            const target = statSync(from_).isDirectory() || !toDir ? inRoot(dest) : path.join(inRoot(dest), path.basename(src));
            mkdirSync(path.dirname(target), { recursive: true });
            cpSync(from_, target, {
              recursive: true,
              filter: (file) => from !== undefined || !isIgnored(path.relative(options.context, file)),
            });
          }
          break;
        }
        case 'RUN': {
          if (!runnable(args)) {
            skipped.push(`${stage.name}:${line} RUN ${args}`);
            break;
          }
          ran.push(`${stage.name}:${line} RUN ${args}`);
          try {
            execFileSync('sh', ['-c', args], {
              cwd: inRoot('.'),
              env: { ...state.env, ...options.env },
              stdio: ['ignore', 'pipe', 'pipe'],
              timeout: 180_000,
            });
          } catch (error) {
            const e = error as { stdout?: Buffer; stderr?: Buffer; message: string };
            throw new Error(`Dockerfile:${line} RUN ${args} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
          }
          break;
        }
        default:
          // HEALTHCHECK, CMD, EXPOSE, LABEL: nothing to replay.
          break;
      }
    }
    states.set(stage.name, state);
    final = state;
  }
  return { stages: states, final: final!, ran, skipped };
}

/** Maps an absolute path inside a stage to its stand-in folder. */
export function inStage(state: StageState, containerPath: string): string {
  return path.join(state.root, path.posix.resolve(state.workdir, containerPath));
}

/**
 * Copies a build context (build/<fn>/ as faas-cli lays it out) outside the repository, where no
 * node_modules above it can stand in for the image's, and replays its Dockerfile there (only the
 * named stages, when given).
 */
export function replayContext(context: string, buildArgs: Record<string, string> = {}, stages?: string[]): { scratch: string; replay: Replay } {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'todo-image-'));
  chmodSync(scratch, 0o755);
  const copy = path.join(scratch, 'context');
  cpSync(context, copy, { recursive: true });
  const replaying = (): Replay => replayDockerfile(parseDockerfile(readFileSync(path.join(copy, 'Dockerfile'), 'utf8')), {
    context: copy,
    scratch: path.join(scratch, 'stages'),
    buildArgs,
    ...(stages ? { replayable: (stage: Stage) => stages.includes(stage.name) } : {}),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: os.homedir(),
      // From the local npm cache when it has the packages: keeps the test fast.
      npm_config_prefer_offline: 'true',
    },
  });
  try {
    return { scratch, replay: replaying() };
  } catch (error) {
    // A step that fails (a test that expects it to) leaves nothing behind.
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
}
