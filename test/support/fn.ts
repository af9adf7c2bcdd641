// Starts the function the way the container's fprocess does: `node dist/index.js`,
// configured only by its environment, as a real child process that tests kill for real.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './ports.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const entry = path.join(repoRoot, 'dist/index.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A real child process a test started, watched and can kill. */
export interface Running {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines written so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  exited: Promise<Exit>;
  kill(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface FunctionProcess extends Running {
  port: number;
  url: string;
}

/** The JSON lines among a process's output. */
export function jsonLines(out: string): Array<Record<string, unknown>> {
  return out
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { unparsed: line };
      }
    });
}

export interface StartOptions {
  /** Wait for the port to accept connections (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  entry?: string;
  cwd?: string;
  /** Runs the command through another, e.g. a shell that first joins a memory cgroup (memoryCgroup.ts). */
  wrap?: (command: string, args: string[]) => { command: string; args: string[] };
  /** Where the process's stdout goes; default a pipe the test reads. */
  stdout?: 'pipe' | number;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const watched = new WeakMap<ChildProcess, Running & { alive(): boolean }>();

/** Collects a child's output and exit: the same record for every caller. */
export function watch(child: ChildProcess): Running & { alive(): boolean } {
  const known = watched.get(child);
  if (known) return known;
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  let alive = true;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
  });
  const record = {
    child,
    output: () => out,
    logs: () => jsonLines(out),
    exited,
    alive: () => alive,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (alive) child.kill(signal);
      return exited;
    },
  };
  watched.set(child, record);
  return record;
}

export async function startFunction(env: Record<string, string>, options: StartOptions = {}): Promise<FunctionProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const command = options.wrap?.(process.execPath, [options.entry ?? entry]) ?? { command: process.execPath, args: [options.entry ?? entry] };
  const child = spawn(command.command, command.args, {
    cwd: options.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env, PORT: String(port) },
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  running.add(child);
  void watch(child).exited.then(() => running.delete(child));
  const fn = { ...watch(child), port, url: `http://127.0.0.1:${port}` };
  if (options.waitReady !== false) {
    try {
      await waitForPort(port, options.readyTimeoutMs ?? 15_000, fn.alive);
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n--- output ---\n${fn.output()}`);
    }
  }
  return fn;
}

/** Waits until the predicate holds, polling; throws with the message after the timeout. */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, message: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
