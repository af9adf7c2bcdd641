// Small tools of the benchmark: one HTTP request timed to its last byte, a
// port probe, the volume as the function lays it out, /proc figures, medians
// and quartiles, and autocannon run as its own process.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { repoRoot } from '../test/support/fn.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface Answer {
  status: number;
  etag: string | undefined;
  body: Buffer;
  /** From the request's creation to the last byte of the body. */
  ms: number;
}

/** One request on a connection of its own (no agent): what a new client, or a gateway's first call, sees. */
export function request(url: string, method = 'GET', timeoutMs = 30_000): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: Buffer.concat(chunks), ms: performance.now() - started }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export { accepts } from '../test/support/ports.ts';

/** Peak resident set size of a live process, in MB (VmHWM). */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return kb / 1024;
}

/** The q-quantile (0..1), linear between the two nearest ranks (numpy's default); quantile(v, 0.5) is the median. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const below = Math.floor(at);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (at - below);
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

export interface Spread {
  medianMs: number;
  /** The interquartile range: p25 and p75. */
  p25Ms: number;
  p75Ms: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

/** Median and interquartile range of timings, in ms. */
export function spread(samplesMs: number[]): Spread {
  return {
    medianMs: round(median(samplesMs)),
    p25Ms: round(quantile(samplesMs, 0.25)),
    p75Ms: round(quantile(samplesMs, 0.75)),
    minMs: round(Math.min(...samplesMs)),
    maxMs: round(Math.max(...samplesMs)),
    samplesMs,
  };
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export interface Machine {
  cpu: string;
  cores: number;
  /** The Node every server and the bench ran on: the container's major (22). */
  node: string;
  /** The machine's own `node` (scripts/node22.mjs says which, in TODO_APP_MACHINE_NODE); the same when run without it. */
  machineNode: string;
  platform: string;
  memoryGb: number;
  loadAverageAtStart: number[];
}

export function machine(os: typeof import('node:os')): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux: os.cpus() is as good
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    node: process.version,
    machineNode: process.env.TODO_APP_MACHINE_NODE || process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryGb: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
  };
}

export interface LoadResult {
  reqPerSec: number;
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  mbPerSec: number;
}

/**
 * autocannon's CLI in a process of its own, so the load generator never shares
 * an event loop with the bench (or the server). On a 2-core machine it still
 * shares the CPU with the server measured: both servers are measured the same way.
 */
export function autocannon(url: string, connections: number, seconds: number): Promise<LoadResult> {
  const bin = path.join(repoRoot, 'node_modules/autocannon/autocannon.js');
  const args = [bin, '-c', String(connections), '-d', String(seconds), '-j', '-n', url];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024, timeout: (seconds + 30) * 1000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`autocannon ${url} failed: ${error.message}\n${stderr}`));
        return;
      }
      const r = JSON.parse(stdout) as {
        requests: { average: number; total: number };
        latency: { p50: number; p99: number };
        throughput: { average: number };
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
        '2xx': number;
      };
      if (r.errors > 0 || r.timeouts > 0 || r.non2xx > 0 || r['2xx'] === 0) {
        reject(new Error(`autocannon ${url}: ${r['2xx']} 2xx, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`));
        return;
      }
      resolve({
        reqPerSec: r['2xx'] / r.duration,
        requests: r['2xx'],
        seconds: r.duration,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        mbPerSec: r.throughput.average / 1e6,
      });
    });
  });
}
