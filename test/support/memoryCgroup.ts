// A real memory cgroup (the v1 hierarchy this machine mounts at /sys/fs/cgroup/memory),
// with the limit stack.yml gives the function: a process is started inside it from its
// first byte, and what the kernel counted is read back: the peak charge, the anonymous
// memory, and whether its OOM killer had to step in.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const V1_ROOT = '/sys/fs/cgroup/memory';

/** stack.yml's `limits: memory: 256Mi`. */
export const STACK_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024;

export interface MemoryCgroup {
  dir: string;
  limitBytes: number;
  /** The command that runs `argv` inside the group from its first instruction: a shell joins it, then execs. */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** memory.max_usage_in_bytes: the peak charge, page cache included. */
  maxUsageBytes(): number;
  /** Anonymous memory now (memory.stat rss): what no reclaim can take back. */
  anonBytes(): number;
  /** The OOM killer's kills in this group (memory.oom_control oom_kill). */
  oomKills(): number;
  /** Whether the group is stuck at its limit now (memory.oom_control under_oom). */
  underOom(): boolean;
  /** Removes the group; its processes must have exited. */
  remove(): void;
}

/** Why memory cgroups cannot be used here, or undefined when they can. */
export function memoryCgroupsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'making a memory cgroup needs root';
  try {
    readFileSync(path.join(V1_ROOT, 'memory.limit_in_bytes'), 'utf8');
  } catch {
    return `no cgroup v1 memory hierarchy at ${V1_ROOT}`;
  }
  return undefined;
}

function field(text: string, name: string): number {
  const value = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1];
  if (value === undefined) throw new Error(`no ${name} in ${text}`);
  return Number(value);
}

export function createMemoryCgroup(label: string, limitBytes = STACK_MEMORY_LIMIT_BYTES): MemoryCgroup {
  const dir = path.join(V1_ROOT, `todo-app-test-${label}-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir);
  const read = (file: string): string => readFileSync(path.join(dir, file), 'utf8');
  writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  // No swap here, but a machine with some would let the group page out instead of being killed.
  try {
    writeFileSync(path.join(dir, 'memory.swappiness'), '0');
  } catch {
    // not every kernel lets a group set it; without swap it changes nothing
  }
  return {
    dir,
    limitBytes,
    wrap: (command, args) => ({
      command: '/bin/sh',
      args: ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, command, ...args],
    }),
    maxUsageBytes: () => Number(read('memory.max_usage_in_bytes')),
    anonBytes: () => field(read('memory.stat'), 'rss'),
    oomKills: () => field(read('memory.oom_control'), 'oom_kill'),
    underOom: () => field(read('memory.oom_control'), 'under_oom') === 1,
    remove: () => {
      // The kernel takes a moment to let go of a group whose last process just exited.
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (attempt >= 50) throw error;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    },
  };
}

/** Samples the group's anonymous memory every few ms while it lives: memory.stat keeps no peak of its own. */
export function watchAnon(group: MemoryCgroup, everyMs = 10): { peakBytes(): number; stop(): void } {
  let peak = 0;
  const sample = (): void => {
    try {
      peak = Math.max(peak, group.anonBytes());
    } catch {
      // the group is gone
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return { peakBytes: () => (sample(), peak), stop: () => clearInterval(timer) };
}

/** The peak resident memory of a live process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}
