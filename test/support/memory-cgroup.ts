// A real cgroup v1 memory group for one process, as a container's limit is: the
// kernel counts the process's memory and OOM-kills it past the limit. Needs root
// and the v1 memory hierarchy at /sys/fs/cgroup/memory (this machine kind has both).
import fs from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup/memory';

export interface MemoryCgroup {
  /**
   * Moves a process in. What it allocated before stays charged where it was (this kernel refuses
   * move_charge_at_immigrate): move it right after spawn, while Node is still booting.
   */
  add(pid: number): void;
  /** OOM kills in the group so far (memory.oom_control's oom_kill). */
  oomKills(): number;
  /** The group's peak usage, page cache included (memory.max_usage_in_bytes). */
  peakBytes(): number;
  remove(): void;
}

/** A group with the limit, or the reason there cannot be one here. */
export function memoryCgroup(name: string, limitBytes: number): MemoryCgroup | string {
  if (process.getuid?.() !== 0) return 'a memory cgroup needs root';
  if (!fs.existsSync(path.join(ROOT, 'memory.limit_in_bytes'))) return `no cgroup v1 memory hierarchy at ${ROOT}`;
  const dir = path.join(ROOT, `${name}-${process.pid}-${Date.now()}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  const read = (file: string): string => fs.readFileSync(path.join(dir, file), 'utf8');
  return {
    add: (pid) => fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)),
    oomKills: () => Number(/^oom_kill (\d+)$/m.exec(read('memory.oom_control'))?.[1] ?? 0),
    peakBytes: () => Number(read('memory.max_usage_in_bytes')),
    remove: () => {
      // A group with processes in it cannot go: the test killed them, give the kernel a moment.
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(dir);
          return;
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    },
  };
}

/** The peak resident memory of a live process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}
