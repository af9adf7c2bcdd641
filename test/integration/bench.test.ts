// The benchmark (npm run bench) in its short mode, run as a user runs it: a
// child process. CI checks that it works and that every figure is there and
// well formed, never the figures themselves: they belong to the machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from '../support/fn.ts';

const out = mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
after(() => rmSync(out, { recursive: true, force: true }));

function positive(value: unknown, what: string): void {
  assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${what} is a positive number, got ${JSON.stringify(value)}`);
}

test('npm run bench -- --short runs every scenario and writes every figure', { timeout: 180_000 }, async () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'bench/bench.ts'), '--short', '--out', out],
      { cwd: repoRoot, env, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(run.code, 0, `bench exited ${run.code}\n${run.stderr}`);
  assert.match(run.stderr, /\[bench +[\d.]+ s\] cold start 1\//, 'progress lines on stderr');
  assert.match(run.stdout, /warm throughput/, 'the table on stdout');

  const r = JSON.parse(readFileSync(path.join(out, 'short.json'), 'utf8'));
  assert.equal(r.mode, 'short');
  assert.ok(!Number.isNaN(Date.parse(r.date)));
  assert.ok(r.machine.cpu.length > 0);
  positive(r.machine.cores, 'machine.cores');
  assert.match(r.machine.node, /^v\d+/);

  for (const side of ['function', 'baseline']) {
    for (const key of ['reqPerSec', 'mbPerSec']) positive(r.warm[side][key], `warm.${side}.${key}`);
    // autocannon reports whole milliseconds: a fast server's p50 may be 0.
    for (const key of ['p50Ms', 'p99Ms']) assert.ok(r.warm[side][key] >= 0, `warm.${side}.${key}`);
    positive(r.coldStart[side].medianMs, `coldStart.${side}.medianMs`);
    assert.equal(r.coldStart[side].samplesMs.length, r.coldStart.runs);
  }
  positive(r.warm.throughputRatio, 'warm.throughputRatio');
  positive(r.coldStart.ratio, 'coldStart.ratio');

  for (const kind of ['fresh', 'stale']) {
    positive(r.staleBurst[kind].medianMs, `staleBurst.${kind}.medianMs`);
    positive(r.staleBurst[kind].maxMs, `staleBurst.${kind}.maxMs`);
  }
  positive(r.staleBurst.stale.downloads, 'staleBurst.stale.downloads');
  positive(r.staleBurst.medianRatio, 'staleBurst.medianRatio');
  assert.equal(r.staleBurst.replicas, 4);
  assert.equal(r.staleBurst.requests, 100);

  for (const variant of ['original', 'resized']) {
    positive(r.refresh[variant].firstMs, `refresh.${variant}.firstMs`);
    positive(r.refresh[variant].nextMs, `refresh.${variant}.nextMs`);
  }
  assert.equal(r.refresh.resized.imageWidth, 600);

  for (const key of ['functionPeakMb', 'baselinePeakMb', 'afterRefreshPeakMb']) positive(r.rss[key], `rss.${key}`);
  for (const key of ['page', 'image', 'ratio']) positive(r.bytes[key], `bytes.${key}`);
  assert.ok(r.bytes.page > r.bytes.image, 'the page holds the image as base64');

  assert.equal(r.targets.length, 6);
  for (const t of r.targets) assert.equal(typeof t.met, 'boolean', `target ${t.name}`);

  const md = readFileSync(path.join(out, 'short.md'), 'utf8');
  assert.match(md, /\| figure \| todo-app \| bare node:http \|/);
  assert.match(md, new RegExp(r.machine.node.replace(/\./g, '\\.')));
});
