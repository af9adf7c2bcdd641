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
  assert.match(run.stderr, /\[bench +[\d.]+ s\] burst at start 1\//);
  assert.match(run.stdout, /warm throughput/, 'the table on stdout');

  const r = JSON.parse(readFileSync(path.join(out, 'short.json'), 'utf8'));
  assert.equal(r.mode, 'short');
  assert.ok(!Number.isNaN(Date.parse(r.date)));
  assert.ok(r.machine.cpu.length > 0);
  positive(r.machine.cores, 'machine.cores');
  assert.ok(Number(/^v(\d+)\./.exec(r.machine.node)?.[1]) >= 22, `the servers ran on Node 22 or later (the container's 22), not ${r.machine.node}`);
  assert.match(r.machine.machineNode, /^v\d+/);
  for (const key of ['loadAverageAtStart', 'loadAverageAtEnd']) assert.equal(r.machine[key].length, 3, `machine.${key}`);

  for (const side of ['function', 'floor']) {
    for (const key of ['reqPerSec', 'mbPerSec']) positive(r.warm[side][key], `warm.${side}.${key}`);
    // autocannon reports whole milliseconds: a fast server's p50 may be 0.
    for (const key of ['p50Ms', 'p99Ms']) assert.ok(r.warm[side][key] >= 0, `warm.${side}.${key}`);
    for (const key of ['p50Ms', 'p99Ms', 'acceptMs', 'lastByteMs']) positive(r.startBurst[side][key], `startBurst.${side}.${key}`);
    assert.equal(r.startBurst[side].runs.length, r.startBurst.runs);
  }
  positive(r.warm.throughputRatio, 'warm.throughputRatio');
  for (const side of ['function', 'floor', 'esm']) {
    for (const key of ['medianMs', 'p25Ms', 'p75Ms']) positive(r.coldStart[side][key], `coldStart.${side}.${key}`);
    assert.ok(r.coldStart[side].p25Ms <= r.coldStart[side].medianMs && r.coldStart[side].medianMs <= r.coldStart[side].p75Ms, `coldStart.${side}: p25 <= median <= p75`);
    assert.equal(r.coldStart[side].samplesMs.length, r.coldStart.runs);
  }
  positive(r.coldStart.ratio, 'coldStart.ratio');
  positive(r.coldStart.esmRatio, 'coldStart.esmRatio');
  assert.equal(r.startBurst.requests, 50);
  positive(r.startBurst.p50Ratio, 'startBurst.p50Ratio');
  positive(r.startBurst.p99Ratio, 'startBurst.p99Ratio');

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

  for (const key of ['functionPeakMb', 'floorPeakMb', 'afterRefreshesOriginalMb', 'afterRefreshesResizedMb']) positive(r.rss[key], `rss.${key}`);
  for (const key of ['page', 'image', 'ratio']) positive(r.bytes[key], `bytes.${key}`);
  assert.ok(r.bytes.page > r.bytes.image, 'the page holds the image as base64');

  // Through of-watchdog only with OF_WATCHDOG_BIN; without it the row says how to get it.
  if (process.env.OF_WATCHDOG_BIN) {
    assert.equal(r.watchdog.measured, true);
    for (const side of ['watchdog', 'direct']) positive(r.watchdog[side].reqPerSec, `watchdog.${side}.reqPerSec`);
    positive(r.watchdog.throughputRatio, 'watchdog.throughputRatio');
  } else {
    assert.deepEqual(r.watchdog, { measured: false, note: 'not measured (set OF_WATCHDOG_BIN)' });
  }

  // Behind the edge cache only where nginx is (the tests install it when root).
  if (r.edge.measured) {
    for (const side of ['cache', 'direct']) positive(r.edge[side].reqPerSec, `edge.${side}.reqPerSec`);
    positive(r.edge.throughputRatio, 'edge.throughputRatio');
    positive(r.edge.perTtl.reads, 'edge.perTtl.reads');
    positive(r.edge.perTtl.reachedReplicas, 'edge.perTtl.reachedReplicas');
    assert.ok(r.edge.perTtl.reachedReplicas < r.edge.perTtl.reads, 'the cache answered reads the replicas never saw');
  } else {
    assert.match(r.edge.note, /^not measured \(/);
  }

  // The soak in a memory cgroup needs root (CI is root); elsewhere the row says why it is missing.
  const root = process.getuid?.() === 0;
  if (root) {
    assert.equal(r.memorySoak.measured, true);
    for (const key of ['maxUsageMiB', 'peakAnonMiB', 'decodeBudgetMiB', 'refreshes', 'stalledClients', 'reqPerSec']) positive(r.memorySoak[key], `memorySoak.${key}`);
    assert.equal(r.memorySoak.limitMiB, 256);
    assert.equal(r.memorySoak.oomKills, 0);
  } else {
    assert.equal(r.memorySoak.measured, false);
  }
  assert.deepEqual(
    r.targets.map((t: { key: string }) => t.key),
    ['throughput', 'coldStart', 'rssAfterLoad', 'pageBytes', 'staleDownloads', 'staleMedian', 'rssAfterRefreshes', ...(root ? ['memorySoak'] : [])],
  );
  for (const t of r.targets) {
    assert.equal(typeof t.met, 'boolean', `target ${t.name}`);
    assert.ok(typeof t.value === 'number' && Number.isFinite(t.value), `target ${t.name} has a value`);
  }

  // Every row of the table, in the markdown the README shows.
  const md = readFileSync(path.join(out, 'short.md'), 'utf8');
  assert.match(md, /\| figure \| todo-app \| floor: bare CommonJS node:http \| ratio \| target \|/);
  assert.match(md, new RegExp(`Node ${r.machine.node.replace(/\./g, '\\.')} \\(the machine's node: ${r.machine.machineNode.replace(/\./g, '\\.')}\\)`));
  assert.match(md, /load average [\d.]+ [\d.]+ [\d.]+ at the start/);
  const rows = [
    /^\| warm throughput \(req\/s.*\| (met|\*\*missed\*\*) \|$/m,
    /^\| warm latency p50 \/ p99 \(ms\) \| [\d.,]+ \/ [\d.,]+ \| [\d.,]+ \/ [\d.,]+ \|/m,
    /^\| cold start, spawn → first 200 with the page \(median \(IQR\) of 3, ms\) \| [\d.,]+ \([\d.,]+–[\d.,]+\) \| [\d.,]+ \([\d.,]+–[\d.,]+\) \| [\d.,]+ \| ≤ 1\.25 \| (met|\*\*missed\*\*) \|$/m,
    /^\| cold start of a bare ESM server.* \| [\d.,]+ \([\d.,]+–[\d.,]+\) \| [\d.,]+ \([\d.,]+–[\d.,]+\) \| [\d.,]+ \|/m,
    /^\| burst at start: 50 GETs once the port accepts, p50 \/ p99 \(ms, median of 3\) \| [\d.,]+ \/ [\d.,]+ \| [\d.,]+ \/ [\d.,]+ \|/m,
    /^\| burst at start: spawn → last byte of all 50 answers/m,
    /^\| peak RSS after the load \(MB\) \| [\d.,]+ \| [\d.,]+ \|  \| ≤ 120 \|/m,
    /^\| page bytes \/ image bytes \|.*\| ≤ 1\.4 \|/m,
    /^\| downloads \(100 requests at once on 4 replicas.*\| = 1 \|/m,
    /^\| latency median \/ max \(ms, 1 repetition\).*\| ≤ 1\.5 \|/m,
    /^\| refresh cost, stale request → new page/m,
    /^\| same with IMAGE_WIDTH=600 \| [\d.,]+ \| [\d.,]+ \|/m,
    /^\| peak RSS after refreshes with IMAGE_WIDTH=600 \(MB, sharp loaded\) \| [\d.,]+ \|  \|  \| ≤ 100 \| (met|\*\*missed\*\*) \|$/m,
    /^\| peak RSS after refreshes, original size \(MB\) \| [\d.,]+ \|/m,
    root
      ? /^\| peak memory, max usage \/ anonymous \(MiB; 4 s soak at [\d,]+ req\/s, \d+ refreshes at 600 px, \d+ stalled clients; 0 OOM kills\) \| [\d.,]+ \/ [\d.,]+ \| [\d,]+ \|  \| ≤ 256 \| (met|\*\*missed\*\*) \|$/m
      : /^\| peak memory under a soak with refreshes and stalled clients \| not measured/m,
    process.env.OF_WATCHDOG_BIN
      ? /^\| warm throughput through of-watchdog \S+ .*\| [\d,]+ \| [\d,]+ \| [\d.,]+ \|/m
      : /^\| warm throughput through of-watchdog \| not measured \(set OF_WATCHDOG_BIN\) \|/m,
    r.edge.measured
      ? /^\| reads per second at the edge cache, nginx \S+ in front of 3 replicas \(req\/s.*\| [\d,]+ \| [\d,]+ \| [\d.,]+ \|/m
      : /^\| reads per second at the edge cache \(nginx\) \| not measured \(/m,
    ...(r.edge.measured ? [/^\| requests reaching the replicas per TTL \(TTL 2 s, [\d,]+ reads in 6 s through the cache, \d+ downloads\) \| [\d.,]+ \|/m] : []),
  ];
  for (const row of rows) assert.match(md, row);
});
