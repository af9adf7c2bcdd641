// Clients that read slowly or not at all cannot hold the function: a client that
// takes nothing of its answer for SEND_IDLE_MS is dropped while a slow reader is
// kept, and the page versions such clients pin stay within MAX_UNSENT_BYTES,
// down to the real function in a 256 MiB memory cgroup (stack.yml's limit).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SEND_IDLE_MS } from '../../template/node22-ts/inFlight.ts';
import { DEFAULT_MAX_UNSENT_BYTES } from '../../template/node22-ts/unsentBodies.ts';
import { eventually, startFunction } from '../support/fn.ts';
import { createMemoryCgroup, memoryCgroupsUnavailable, peakRssMiB } from '../support/memoryCgroup.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { readAt, type Reading } from '../support/readers.ts';
import { cannotRunHere } from '../support/skip.ts';
import { bigPictureSource } from '../support/big-picture.ts';
import { wrapperWith, type WrapperRoot } from '../support/wrapper-root.ts';

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('slow and stalled clients', { concurrency: true, timeout: 120_000 }, () => {
  let root: WrapperRoot;
  before(() => {
    root = wrapperWith();
  });
  after(() => root.remove());

  it(`a client that takes nothing of an 8.6 MB answer is dropped ${SEND_IDLE_MS / 1000} to ${(2 * SEND_IDLE_MS) / 1000} s after; one that wakes before is served whole, one reading 150 KB/s all along too`, async () => {
    const fn = await startFunction({}, { entry: root.entry });
    const size = 8_630_000;
    const late = readAt(fn.port, `/big/${size}`, 0);
    const early = readAt(fn.port, `/big/${size}`, 0);
    const slow = readAt(fn.port, `/big/${size}`, 150_000);
    try {
      // A paused socket sees no close until it reads: each wakes up and reads what is left.
      await sleep(SEND_IDLE_MS - 5000);
      early.wake();
      await sleep(SEND_IDLE_MS + 10_000);
      late.wake();
      await late.ended;
      assert.equal(early.received(), size, 'woken 5 s before the first drop: served whole');
      assert.ok(late.received() < size, `woken 5 s after the latest drop: dropped, with ${late.received()} of ${size} bytes`);
      assert.equal(slow.closed(), false, `the slow reader is still being served (${slow.received()} bytes so far)`);
      const before = slow.received();
      await sleep(1000);
      assert.ok(slow.received() > before, 'and still receiving');
    } finally {
      for (const client of [late, early, slow]) client.destroy();
      await fn.kill();
    }
  });

  it(`answers a new 8 MB version each to 40 clients that never read: RSS stays within MAX_UNSENT_BYTES (${DEFAULT_MAX_UNSENT_BYTES / MiB} MiB) of the start, the oldest are dropped, the newest kept`, async () => {
    const fn = await startFunction({}, { entry: root.entry });
    const clients: Reading[] = [];
    try {
      assert.equal((await fetch(`${fn.url}/fresh/10`)).status, 200);
      const base = peakRssMiB(fn.child.pid!);
      for (let i = 0; i < 40; i++) {
        clients.push(readAt(fn.port, '/fresh/8000000', 0));
        await eventually(() => clients.at(-1)!.received() > 0, 5000, `client ${i} got the start of its answer`);
      }
      await sleep(500);
      const peak = peakRssMiB(fn.child.pid!);
      process.stderr.write(`# 40 clients that never read, a new 8 MB body each: peak RSS ${base.toFixed(0)} -> ${peak.toFixed(0)} MiB\n`);
      // Unbounded, the 40 bodies alone are 305 MiB. Bounded: the budget, plus the dropped bodies V8
      // has not collected yet (it collects once external memory grows by 64 MiB), plus slack.
      assert.ok(peak - base < DEFAULT_MAX_UNSENT_BYTES / MiB + 64 + 32, `peak RSS ${base.toFixed(0)} -> ${peak.toFixed(0)} MiB`);
      // A paused socket sees no close until it reads: the oldest wake up and find their answers cut.
      for (const client of clients.slice(0, 30)) client.wake();
      await Promise.all(clients.slice(0, 30).map((c) => c.ended));
      assert.ok(clients.slice(0, 30).every((c) => c.received() < 8_000_000), 'the oldest answers were dropped');
      assert.ok(clients.slice(-3).every((c) => !c.closed()), 'the newest answers are still there');
      assert.match(fn.output(), /"msg":"answers dropped: [^"]*"/);
      assert.equal((await fetch(`${fn.url}/json`)).status, 201, 'and the function answers');
    } finally {
      for (const client of clients) client.destroy();
      await fn.kill();
    }
  });

  it('todo-app with IMAGE_TTL_SECONDS=1, a 6.3 MB page and a new client that never reads every second for 35 s, in a 256 MiB memory cgroup: no OOM kill, the page still served', async (t) => {
    const unavailable = memoryCgroupsUnavailable();
    if (unavailable !== undefined) return cannotRunHere(t, unavailable);
    const group = createMemoryCgroup('stalled', 256 * MiB);
    const source = await bigPictureSource(2400);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-stalled-'));
    const port = await freePort();
    const fn = await startFunction({ PORT: String(port), IMAGE_URL: source.url, IMAGE_DIR: dir, IMAGE_TTL_SECONDS: '1', LOG_LEVEL: 'warn' }, { waitReady: false, wrap: group.wrap });
    const clients: Reading[] = [];
    try {
      await waitForPort(port, 15_000, () => fn.child.exitCode === null);
      assert.equal((await fetch(`${fn.url}/`)).status, 200);
      // A version every second or two: without a bound, 100 to 200 MB pinned on top of the process's own.
      for (let second = 0; second < 35 && fn.child.exitCode === null; second++) {
        clients.push(readAt(port, '/', 0));
        await sleep(1000);
      }
      let peak = NaN;
      try {
        peak = peakRssMiB(fn.child.pid!);
      } catch {
        // gone: the assertions below say how
      }
      process.stderr.write(`# todo-app, 35 clients that never read, a page version each second: peak RSS ${peak.toFixed(0)} MiB, cgroup peak ${(group.maxUsageBytes() / MiB).toFixed(0)} MiB\n`);
      assert.equal(group.oomKills(), 0, `OOM-killed:\n${fn.output()}`);
      assert.equal(fn.child.exitCode, null);
      const page = await fetch(`${fn.url}/`);
      assert.equal(page.status, 200);
      await page.arrayBuffer();
    } finally {
      for (const client of clients) client.destroy();
      await fn.kill();
      group.remove();
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
