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

export interface FunctionProcess {
  port: number;
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines written so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  exited: Promise<Exit>;
  kill(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface StartOptions {
  /** Wait for the port to accept connections (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  entry?: string;
  cwd?: string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startFunction(env: Record<string, string>, options: StartOptions = {}): Promise<FunctionProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [options.entry ?? entry], {
    cwd: options.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  let alive = true;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const fn: FunctionProcess = {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => out,
    logs: () =>
      out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return { unparsed: line };
          }
        }),
    exited,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (alive) child.kill(signal);
      return exited;
    },
  };
  if (options.waitReady !== false) {
    try {
      await waitForPort(port, options.readyTimeoutMs ?? 15_000, () => alive);
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n--- output ---\n${out}`);
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
