// Local: no cluster, no network. Start the function the way the platform
// does (a fresh `node dist/index.js`, configured only by its environment,
// IMAGE_DIR on a volume that already holds the image) and time spawn -> first
// 200 with the page. The volume is prepared by the tool itself when empty:
// a tiny source on 127.0.0.1 serves a generated photo-sized JPEG, one process
// downloads it, and every timed run after that starts on a warm volume.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ToolError } from './errors.ts';
import type { Progress } from './progress.ts';
import { timePage, untilPage, type ColdTiming } from './request.ts';
import { coldSummary, type ModeResult, type Run } from './report.ts';

export interface LocalOptions {
  entry: string;
  /** Working directory of the function process. */
  cwd: string;
  runs: number;
  /** Unset: a temporary folder, warmed and removed afterwards. */
  imageDir?: string;
  /** Unset: the embedded source. */
  imageUrl?: string;
  startTimeoutMs: number;
  requestTimeoutMs: number;
}

interface LocalSource {
  url: string;
  downloads: number;
  close(): Promise<void>;
}

/** A stand-in for picsum.photos/1200: 302 to a 1200x1200 JPEG of about the size of a real photo. */
async function startEmbeddedSource(): Promise<LocalSource> {
  // sharp is the function's own dependency; imported only when a volume must be prepared.
  const { default: sharp } = await import('sharp');
  const jpeg = await sharp({
    create: { width: 1200, height: 1200, channels: 3, background: { r: 96, g: 140, b: 178 }, noise: { type: 'gaussian', mean: 128, sigma: 7 } },
  })
    .jpeg({ quality: 80 })
    .toBuffer();
  const source = { url: '', downloads: 0, close: async () => {} } as LocalSource;
  const server = http.createServer((req, res) => {
    if (req.url === '/1200') {
      res.writeHead(302, { Location: '/id/1/1200/1200.jpg' }).end();
      return;
    }
    if (req.url?.startsWith('/id/')) {
      source.downloads++;
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length, 'Picsum-ID': '1' }).end(jpeg);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  source.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/1200`;
  source.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return source;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Started {
  child: ChildProcess;
  port: number;
  startedAt: number;
  exited: Promise<number | null>;
  alive(): boolean;
  output(): string;
}

function startProcess(options: LocalOptions, env: Record<string, string>, port: number): Started {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PORT: String(port) };
  // The test runner's marker would make a child that imports node:test report to it.
  delete childEnv.NODE_TEST_CONTEXT;
  const startedAt = performance.now();
  const child = spawn(process.execPath, [options.entry], { cwd: options.cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let alive = true;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      alive = false;
      resolve(code);
    }),
  );
  return { child, port, startedAt, exited, alive: () => alive, output: () => tail };
}

async function stopProcess(started: Started): Promise<void> {
  if (!started.alive()) return;
  // SIGTERM first, as Kubernetes does on every scale-down.
  started.child.kill('SIGTERM');
  const bound = setTimeout(() => started.child.kill('SIGKILL'), 10_000);
  await started.exited;
  clearTimeout(bound);
}

/** Between tries while the process does not listen yet: bench/bench.ts polls its cold starts as often. */
const POLL_MS = 2;

/** Requests / until the process answers with the page, counting from spawn. Connection refused means not listening yet. */
async function firstAnswer(started: Started, options: LocalOptions): Promise<ColdTiming> {
  const listening = (error: NodeJS.ErrnoException): boolean => started.alive() && (error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET');
  try {
    return await untilPage(`http://127.0.0.1:${started.port}/`, {
      timeoutMs: options.requestTimeoutMs,
      startedAt: started.startedAt,
      retryMs: POLL_MS,
      boundMs: options.startTimeoutMs,
      notYet: listening,
    });
  } catch (error) {
    if (!started.alive()) throw new ToolError(`the function exited before it answered (exit code ${await started.exited}):\n${started.output()}`, 'EEXITED');
    if ((error as ToolError).code === 'ETIMEDOUT') throw new ToolError(`the function did not answer within ${options.startTimeoutMs} ms:\n${started.output()}`, 'ESTART');
    throw error;
  }
}

function imageAgeSeconds(dir: string): number | undefined {
  try {
    const at = Date.parse(readFileSync(path.join(dir, '.ts'), 'utf8').trim());
    return Number.isNaN(at) ? undefined : Math.round((Date.now() - at) / 1000);
  } catch {
    return undefined;
  }
}

export async function measureLocal(options: LocalOptions, progress: Progress): Promise<ModeResult> {
  if (!existsSync(options.entry)) {
    throw new ToolError(`${options.entry} does not exist: run \`npm run build\` first (or pass --entry)`, 'ENOENTRY');
  }
  const temporary = options.imageDir === undefined;
  const imageDir = options.imageDir ?? mkdtempSync(path.join(os.tmpdir(), 'todo-app-coldstart-'));
  const source = options.imageUrl ? undefined : await startEmbeddedSource();
  const env = { IMAGE_DIR: path.resolve(imageDir), IMAGE_URL: options.imageUrl ?? source!.url };
  const notes: string[] = [];
  const runs: Run[] = [];
  try {
    const imagePath = path.join(env.IMAGE_DIR, 'image.jpg');
    let warmedBy = 'the folder as found';
    if (!existsSync(imagePath)) {
      progress.say(`warming ${env.IMAGE_DIR}: one function process downloads the image from ${env.IMAGE_URL}`);
      const started = startProcess(options, env, await freePort());
      try {
        await firstAnswer(started, { ...options, startTimeoutMs: Math.max(options.startTimeoutMs, 30_000) });
      } finally {
        await stopProcess(started);
      }
      if (!existsSync(imagePath)) throw new ToolError(`the warm-up process left no ${imagePath}: the runs would not start on a warm volume`, 'ENOWARM');
      warmedBy = 'a warm-up process';
    }
    const age = imageAgeSeconds(env.IMAGE_DIR);
    const ttl = Number(process.env.IMAGE_TTL_SECONDS ?? 600);
    if (age !== undefined && age > ttl) {
      notes.push(`the image on the volume is ${age} s old, past IMAGE_TTL_SECONDS=${ttl}: each run serves it and starts a background refresh`);
    }
    const downloadsBefore = source?.downloads ?? 0;
    for (let i = 1; i <= options.runs; i++) {
      const label = `run ${i}/${options.runs}`;
      const port = await freePort();
      const stopAt = performance.now();
      const started = startProcess(options, env, port);
      try {
        const cold = await firstAnswer(started, options);
        const warm = await timePage(`http://127.0.0.1:${port}/`, { timeoutMs: options.requestTimeoutMs });
        progress.say(`${label}: from spawn, ${coldSummary(cold)}; warm total ${warm.totalMs.toFixed(1)} ms`);
        runs.push({ cold, warm, waitedMs: started.startedAt - stopAt });
      } finally {
        await stopProcess(started);
      }
    }
    const downloads = source ? source.downloads - downloadsBefore : null;
    if (downloads) notes.push(`the function downloaded ${downloads} time(s) during the timed runs: those runs were not purely a warm-volume start`);
    return {
      mode: 'local',
      target: `node ${path.relative(options.cwd, options.entry) || options.entry}, GET / on a new port each run`,
      runs,
      details: {
        entry: options.entry,
        imageDir: temporary ? '(temporary)' : env.IMAGE_DIR,
        imageUrl: options.imageUrl ?? 'embedded source',
        volume: warmedBy,
        imageBytes: existsSync(imagePath) ? readFileSync(imagePath).length : null,
        downloadsDuringRuns: downloads,
      },
      notes,
      coldFrom: 'the spawn of the process',
    };
  } finally {
    await source?.close();
    if (temporary) rmSync(imageDir, { recursive: true, force: true });
  }
}
