// Starts of-watchdog in front of `node dist/index.js` as the container does: the
// image's ENV (read from the template's Dockerfile, so a change there is what the
// tests see), then the function's environment, with its own /tmp (TMPDIR) and
// free ports. The watchdog is the stand-in of of-watchdog.ts, or the real binary
// when OF_WATCHDOG_BIN names one: the same tests then judge the stand-in.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDockerfile, parseEnv } from './deploy-dockerfile.ts';
import { repoRoot, watch, type Running } from './fn.ts';
import { freePort, waitForPort } from './ports.ts';

/** The ENV of the image's last stage, as `docker run` would set it. */
export function imageEnv(): Record<string, string> {
  const stages = parseDockerfile(fs.readFileSync(path.join(repoRoot, 'template/node22-ts/Dockerfile'), 'utf8'));
  const env: Record<string, string> = {};
  for (const instruction of stages[stages.length - 1]!.instructions) {
    if (instruction.keyword === 'ENV') Object.assign(env, parseEnv(instruction.args));
  }
  return env;
}

/** kill() signals the watchdog alone, as the kubelet does; logs() are the function's, passed through. */
export interface Watchdog extends Running {
  /** The watchdog's origin, where the platform sends requests. */
  url: string;
  port: number;
  /** Where the function listens (upstream_url's port). */
  upstreamPort: number;
  lockFile: string;
  tmpDir: string;
  /** True when this is the real of-watchdog binary. */
  real: boolean;
  /** Kills the watchdog and the function, as the end of the container does. */
  destroy(): Promise<void>;
}

// The real watchdog leaves its function running when it exits (in a container PID 1's exit
// ends them all): each watchdog leads a process group, and clean-up kills the group.
const running = new Set<ChildProcess>();
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}
process.on('exit', () => {
  for (const child of running) killGroup(child);
});

export interface WatchdogOptions {
  /** Wait until the watchdog accepts connections (default true). */
  waitListening?: boolean;
}

export async function startWatchdog(functionEnv: Record<string, string>, options: WatchdogOptions = {}): Promise<Watchdog> {
  const port = await freePort();
  const upstreamPort = await freePort();
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-watchdog-tmp-'));
  const bin = process.env.OF_WATCHDOG_BIN;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: os.homedir(),
    ...imageEnv(),
    port: String(port),
    upstream_url: `http://127.0.0.1:${upstreamPort}`,
    TMPDIR: tmpDir,
    ...functionEnv,
  };
  const [command, args] = bin ? [bin, []] : [process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/support/of-watchdog.ts')]];
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  const watched = watch(child);
  const { exited, alive } = watched;
  const watchdog: Watchdog = {
    ...watched,
    url: `http://127.0.0.1:${port}`,
    port,
    upstreamPort,
    lockFile: path.join(tmpDir, '.lock'),
    tmpDir,
    real: Boolean(bin),
    destroy: async () => {
      killGroup(child);
      running.delete(child);
      await exited;
      fs.rmSync(tmpDir, { recursive: true, force: true });
    },
  };
  if (options.waitListening !== false) {
    await waitForPort(port, 15_000, alive).catch((error: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${error.message}\n--- output ---\n${watched.output()}`);
    });
  }
  return watchdog;
}
