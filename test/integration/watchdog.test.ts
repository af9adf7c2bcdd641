// The platform boundary: todo-app as the container runs it, `node dist/index.js`
// behind of-watchdog with the image's environment (test/support/watchdog.ts; the
// stand-in of-watchdog.ts, or the real binary with OF_WATCHDOG_BIN). What a
// visitor, a probe and the kubelet see: readiness only when the page can be
// served, exact framing on a kept-alive connection, POST from faas-cli invoke,
// SIGTERM on the watchdog's timeline with no 5xx and no lock left on the volume.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { connect, type Answer } from '../support/http1.ts';
import { startSource, type ImageSource } from '../support/source.ts';
import { startWatchdog, type Watchdog } from '../support/watchdog.ts';

const upstreamFixture = path.join(repoRoot, 'test/fixtures/upstream.mjs');

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function status(url: string, init?: RequestInit): Promise<number> {
  try {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0; // refused or reset: no answer
  }
}

/** A picture already on the volume, as after an earlier run. */
async function warmVolume(source: ImageSource): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-wd-vol-'));
  const fn = await startFunction({ IMAGE_DIR: dir, IMAGE_URL: source.url });
  assert.equal(await status(`${fn.url}/`), 200);
  await fn.kill('SIGTERM');
  return dir;
}

describe('the stand-in of-watchdog follows of-watchdog', { timeout: 60_000 }, () => {
  const started: Watchdog[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((w) => w.destroy()));
  });
  const watchdog = async (env: Record<string, string>): Promise<Watchdog> => {
    const w = await startWatchdog({ fprocess: `node ${upstreamFixture}`, ...env });
    started.push(w);
    await eventually(() => canConnect('127.0.0.1', w.upstreamPort), 10_000, 'the fixture listens');
    return w;
  };

  it('health is 200 only while it accepts and the lock file exists; with suppress_lock nobody but the function writes it', async () => {
    const w = await watchdog({ suppress_lock: 'true' });
    assert.equal(await status(`${w.url}/_/health`), 503, 'no lock file yet');
    assert.equal(await status(`${w.url}/_/ready`), 503);
    fs.writeFileSync(w.lockFile, '');
    assert.equal(await status(`${w.url}/_/health`), 200);
    assert.equal(await status(`${w.url}/_/ready`), 200);
    assert.equal(await status(`${w.url}/_/health`, { method: 'POST' }), 405);
    fs.rmSync(w.lockFile);
    assert.equal(await status(`${w.url}/_/health`), 503);
    // The real watchdog serves metrics on a fixed port (8081): one at a time.
    await w.destroy();

    const own = await watchdog({ suppress_lock: 'false' });
    assert.ok(fs.existsSync(own.lockFile), 'without suppress_lock the watchdog writes the lock at its own start');
    assert.equal(await status(`${own.url}/_/health`), 200);
  });

  it('forwards the request URI unchanged with every header, a body chunked, and adds X-Duration-Seconds', async () => {
    const w = await watchdog({});
    const conn = await connect(w.port);
    const res = await conn.send('POST /echo/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\nX-Custom: yes\r\nContent-Length: 5\r\n\r\nhello');
    conn.close();
    const seen = JSON.parse(res.body.toString('utf8')) as { method: string; url: string; headers: Record<string, string>; body: string };
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/echo/a%2Fb?x=1&y=%20');
    assert.equal(seen.headers['x-custom'], 'yes');
    assert.equal(seen.headers.host, 'example.test');
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.body, 'hello');
    assert.match(res.headers['x-duration-seconds'] ?? '', /^\d+\.\d+$/);
  });

  it('answers an empty 500 when the function refuses, an empty 504 past exec_timeout, and exits 1 when the function dies', async () => {
    const w = await watchdog({ exec_timeout: '1s' });
    const began = Date.now();
    const slow = await fetch(`${w.url}/hang`);
    assert.equal(slow.status, 504);
    assert.equal(await slow.text(), '');
    assert.equal(slow.headers.get('x-openfaas-internal'), 'of-watchdog');
    assert.ok(Date.now() - began >= 950 && Date.now() - began < 5000);

    assert.equal(await status(`${w.url}/exit/3`), 200);
    assert.deepEqual(await w.exited, { code: 1, signal: null }, 'log.Fatalf when the forked function terminates');

    const refused = await startWatchdog({ fprocess: 'node -e 0' });
    started.push(refused);
    const res = await fetch(`${refused.url}/`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), '');
    assert.equal(res.headers.get('x-openfaas-internal'), 'of-watchdog');
  });

  it('on SIGTERM removes the lock at once, forwards for healthcheck_interval ("2" is seconds), then exits 0', async () => {
    const w = await watchdog({ healthcheck_interval: '2', suppress_lock: 'false' });
    assert.equal(await status(`${w.url}/_/health`), 200);
    const signalled = Date.now();
    w.child.kill('SIGTERM');
    await eventually(() => !fs.existsSync(w.lockFile), 1000, 'the lock file is removed at once');
    assert.equal(await status(`${w.url}/_/health`), 503);
    assert.deepEqual(await w.exited, { code: 0, signal: null });
    const took = Date.now() - signalled;
    assert.ok(took >= 1950 && took < 4000, `exited ${took} ms after SIGTERM`);
  });
});

describe('todo-app behind of-watchdog, with the image environment', { timeout: 240_000 }, () => {
  let source: ImageSource;
  const started: Watchdog[] = [];
  const dirs: string[] = [];
  before(async () => {
    source = await startSource();
  });
  after(async () => {
    await source.close();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((w) => w.destroy()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const run = async (env: Record<string, string> = {}, dir?: string): Promise<Watchdog> => {
    const imageDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'todo-wd-'));
    dirs.push(imageDir);
    const w = await startWatchdog({ IMAGE_DIR: imageDir, IMAGE_URL: source.url, ...env });
    started.push(w);
    return w;
  };

  /**
   * Polls both probes (HTTP /_/health and the exec probe's lock file) and the page every few ms
   * from the watchdog's start until the page is served; returns how many page requests started
   * after a probe had said "ready" got something other than 200.
   */
  const coldStart = async (w: Watchdog): Promise<{ failuresAfterReady: number[]; healthOk: boolean; pages: number }> => {
    let readyAt = Infinity;
    const failuresAfterReady: number[] = [];
    let pages = 0;
    let served = false;
    const deadline = Date.now() + 15_000;
    const probes = (async () => {
      while (!served && Date.now() < deadline) {
        if (fs.existsSync(w.lockFile)) readyAt = Math.min(readyAt, performance.now());
        if ((await status(`${w.url}/_/health`)) === 200) readyAt = Math.min(readyAt, performance.now());
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const visitor = (async () => {
      while (!served && Date.now() < deadline) {
        const startedAt = performance.now();
        const code = await status(`${w.url}/`);
        pages++;
        if (startedAt > readyAt && code !== 200) failuresAfterReady.push(code);
        if (code === 200) served = true;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await Promise.all([probes, visitor]);
    assert.ok(served, `the page was never served:\n${w.output()}`);
    return { failuresAfterReady, healthOk: readyAt !== Infinity, pages };
  };

  it('a cold start: no probe says ready before the page can be served', async () => {
    const dir = await warmVolume(source);
    const w = await run({}, dir);
    const seen = await coldStart(w);
    assert.deepEqual(seen.failuresAfterReady, [], 'a page request after a probe said ready failed');
    assert.ok(seen.pages > 1, 'the visitor polled before the function listened');
    assert.equal(await status(`${w.url}/_/health`), 200);
    assert.ok(fs.existsSync(w.lockFile), 'the exec probe (cat /tmp/.lock) passes');
  });

  it('control: with the watchdog writing its own lock (suppress_lock=false), the probes pass while the page still fails', async () => {
    const dir = await warmVolume(source);
    const w = await run({ suppress_lock: 'false' }, dir);
    const seen = await coldStart(w);
    assert.ok(seen.failuresAfterReady.length > 0, 'the detector must catch what the old Dockerfile did');
    assert.ok(seen.failuresAfterReady.every((code) => code === 500));
  });

  it('a lock file left in /tmp by a crashed run is removed at start, and written again only once the function listens', async () => {
    // /tmp is an emptyDir: it outlives a crashed container, and its lock with it.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-wd-stale-'));
    dirs.push(tmp);
    fs.writeFileSync(path.join(tmp, '.lock'), '');
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const fn = await startFunction(
        { IMAGE_DIR: tmp, IMAGE_URL: source.url, upstream_url: `http://127.0.0.1:${port}`, suppress_lock: 'true', TMPDIR: tmp },
        { waitReady: false },
      );
      const exit = await fn.exited;
      assert.equal(exit.code, 1);
      assert.match(fn.output(), new RegExp(`^upstream_url: port ${port} is in use by another process`, 'm'));
      assert.equal(fs.existsSync(path.join(tmp, '.lock')), false, 'the stale lock would tell the probes a function that cannot listen is ready');
    } finally {
      busy.close();
    }
  });

  it("a function that dies takes the lock file with it: the next container's probes see no stale lock", async () => {
    const w = await run({ ENABLE_SHUTDOWN: 'true' });
    await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
    assert.ok(fs.existsSync(w.lockFile));
    // The course's crash: exit code 1. /tmp (an emptyDir) outlives the container, and
    // faas-netes probes from the container's first second (chart/openfaas/values.yaml:
    // initialDelaySeconds 0): a lock left here would say "ready" before the next node listens.
    assert.equal(await status(`${w.url}/_shutdown`), 200);
    assert.deepEqual(await w.exited, { code: 1, signal: null }, 'the watchdog exits when its function dies');
    assert.equal(fs.existsSync(w.lockFile), false, 'the lock file is gone with the function');
  });

  const sequence: Array<{ request: string; method?: string; status: number; check?: (a: Answer, page: Answer) => void }> = [
    { request: 'GET / HTTP/1.1\r\nHost: fn\r\n\r\n', status: 200 },
    {
      request: 'HEAD / HTTP/1.1\r\nHost: fn\r\n\r\n',
      status: 200,
      check: (a, page) => assert.equal(a.headers['content-length'], page.headers['content-length'], 'HEAD has the GET length'),
    },
    { request: 'GET /nope HTTP/1.1\r\nHost: fn\r\n\r\n', status: 404 },
    { request: 'PUT / HTTP/1.1\r\nHost: fn\r\nContent-Length: 3\r\n\r\nabc', status: 405, check: (a) => assert.equal(a.headers.allow, 'GET, HEAD, POST') },
    { request: 'DELETE / HTTP/1.1\r\nHost: fn\r\n\r\n', status: 405 },
    { request: 'GET /_shutdown HTTP/1.1\r\nHost: fn\r\n\r\n', status: 404 },
    { request: 'GET /nope HTTP/1.1\r\nHost: fn\r\n\r\n', status: 404 },
    {
      request: 'POST / HTTP/1.1\r\nHost: fn\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
      status: 200,
      check: (a, page) => assert.deepEqual(a.body, page.body, 'POST gets the page'),
    },
    { request: 'OPTIONS / HTTP/1.1\r\nHost: fn\r\n\r\n', status: 405 },
    { request: 'GET /?utm=1 HTTP/1.1\r\nHost: fn\r\n\r\n', status: 200 },
  ];

  const keepAlive = async (port: number): Promise<void> => {
    const conn = await connect(port);
    try {
      const page = await conn.send('GET / HTTP/1.1\r\nHost: fn\r\n\r\n');
      assert.equal(page.status, 200);
      const etag = page.headers.etag!;
      const steps = [
        ...sequence,
        {
          request: `GET / HTTP/1.1\r\nHost: fn\r\nIf-None-Match: ${etag}\r\n\r\n`,
          status: 304,
          check: (a: Answer) => {
            assert.equal(a.headers.etag, etag);
            assert.ok(a.headers['content-length'] === undefined || a.headers['content-length'] === page.headers['content-length'], 'a 304 declares no other length than the 200 (RFC 9110 8.6)');
          },
        },
        ...sequence,
      ];
      for (const step of steps) {
        const answer = await conn.send(step.request, step.method);
        assert.equal(answer.status, step.status, `${step.request.split('\r\n')[0]}: ${answer.head}`);
        if (answer.headers['content-length'] !== undefined && !/^HEAD /.test(step.request) && answer.status !== 304) {
          assert.equal(Number(answer.headers['content-length']), answer.body.length);
        }
        step.check?.(answer, page);
        assert.equal(conn.leftover().length, 0, `bytes beyond the answer to ${step.request.split('\r\n')[0]}`);
      }
      assert.ok(!conn.closed(), 'the connection is still open after every answer');
    } finally {
      conn.close();
    }
  };

  it('one kept-alive connection through a mix of 200, HEAD, 304, 404, 405 and POST: every answer framed exactly', async () => {
    const w = await run();
    await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
    await keepAlive(w.port);
    // And straight at the function, as Knative's queue-proxy talks to it.
    await keepAlive(w.upstreamPort);
    assert.ok(!/Unsolicited response|HPE_/.test(w.output()), w.output());
  });

  it('faas-cli invoke (POST with a body) gets the page', async () => {
    const w = await run();
    await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
    const res = await fetch(`${w.url}/`, { method: 'POST', body: 'anything', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /data:image\/jpeg;base64,/);
  });

  it('listens on loopback only: the pod IP on the upstream port does not bypass the watchdog', async () => {
    const w = await run();
    await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
    assert.ok(await canConnect('127.0.0.1', w.upstreamPort));
    // Linux routes all of 127/8 to lo: a socket bound to 127.0.0.1 alone refuses 127.0.0.2.
    assert.equal(await canConnect('127.0.0.2', w.upstreamPort), false, 'reachable on another address');
    assert.ok(await canConnect('127.0.0.2', w.port), 'the watchdog itself listens on every interface');
  });

  it("a FETCH_TIMEOUT_MS the watchdog's exec_timeout would cut stops the start with one line naming both", async () => {
    const w = await run({ exec_timeout: '5s', FETCH_TIMEOUT_MS: '10000' });
    const exit = await w.exited;
    assert.equal(exit.code, 1, 'the watchdog exits when the function does');
    const lines = w.output().split('\n').filter((l) => l.startsWith('FETCH_TIMEOUT_MS'));
    assert.deepEqual(lines, [`FETCH_TIMEOUT_MS: must be at most 4000, 1 s below of-watchdog's exec_timeout (5000 ms), or the first visitor gets the watchdog's 504, got "10000"`]);
  });

  it('with no image and a hanging source the first visitor gets our 503 page before exec_timeout, not the empty 504', async () => {
    source.mode = 'hang';
    try {
      const w = await run({ exec_timeout: '3', FETCH_TIMEOUT_MS: '2000' });
      await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
      const res = await fetch(`${w.url}/`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /could not be fetched/);
      assert.ok(res.headers.get('retry-after'));
    } finally {
      source.mode = 'ok';
    }
  });

  it('SIGTERM under load for healthcheck_interval "5s", "5" and "1m": answers through the window, no 5xx, exit 0', async () => {
    const windows: Array<[string, number]> = [
      ['5s', 5000],
      ['5', 5000],
      ['1m', 60_000],
    ];
    // Side by side with the stand-in; one after the other with the real binary (its metrics port is fixed).
    const each = async <T>(items: Array<[string, number]>, job: (item: [string, number]) => Promise<T>): Promise<T[]> => {
      if (!process.env.OF_WATCHDOG_BIN) return Promise.all(items.map(job));
      const out: T[] = [];
      for (const item of items) out.push(await job(item));
      return out;
    };
    const results = await each(
      windows,
      async ([interval, ms]) => {
        const w = await run({ healthcheck_interval: interval, write_timeout: '25s' });
        await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
        assert.equal(await status(`${w.url}/`), 200, 'the image is in memory');
        const codes = new Map<number, number>();
        let lastOk = 0;
        let stop = false;
        const signalled = Date.now();
        w.child.kill('SIGTERM');
        const load = (async () => {
          while (!stop) {
            const code = await status(`${w.url}/`);
            codes.set(code, (codes.get(code) ?? 0) + 1);
            if (code === 200) lastOk = Date.now() - signalled;
            if (code === 0) break; // the watchdog stopped listening
            await new Promise((r) => setTimeout(r, 40));
          }
        })();
        const exit = await w.exited;
        stop = true;
        await load;
        return { interval, ms, codes, lastOk, exit, took: Date.now() - signalled, output: w.output() };
      },
    );
    for (const r of results) {
      const fivexx = [...r.codes].filter(([code]) => code >= 500).reduce((n, [, count]) => n + count, 0);
      assert.equal(fivexx, 0, `${r.interval}: ${JSON.stringify([...r.codes])}\n${r.output}`);
      assert.ok(r.lastOk >= r.ms - 300, `${r.interval}: last 200 ${r.lastOk} ms after SIGTERM, window ${r.ms} ms`);
      assert.deepEqual(r.exit, { code: 0, signal: null }, r.interval);
      assert.ok(r.took < r.ms + 5000, `${r.interval}: the watchdog exited ${r.took} ms after SIGTERM`);
      assert.ok(/"msg":"stopped"/.test(r.output), `${r.interval}: the function stopped cleanly\n${r.output}`);
    }
  });

  it('a refresh in flight at SIGTERM is ended and the volume lock released before the watchdog exits', async () => {
    const dir = await warmVolume(source);
    // Stale at once, and the next download never finishes.
    const w = await run({ IMAGE_TTL_SECONDS: '1', healthcheck_interval: '3s', FETCH_TIMEOUT_MS: '15000' }, dir);
    await eventually(async () => (await status(`${w.url}/_/health`)) === 200, 10_000, 'ready');
    source.mode = 'hang';
    try {
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal(await status(`${w.url}/`), 200, 'the stale page, at once');
      const lock = path.join(dir, '.refresh.lock');
      await eventually(() => fs.existsSync(lock), 5000, 'the refresh holds the volume lock');
      w.child.kill('SIGTERM');
      await w.exited;
      assert.equal(fs.existsSync(lock), false, 'the lock is gone when the watchdog, PID 1, exits');
      await eventually(() => /"msg":"stopped"/.test(w.output()), 3000, 'the function logged its stop');
      assert.match(w.output(), /"msg":"refresh failed"/);
    } finally {
      source.mode = 'ok';
    }
  });
});

describe('todo-app without a watchdog, as Knative runs it', { timeout: 60_000 }, () => {
  let source: ImageSource;
  let fn: FunctionProcess | undefined;
  let dir: string;
  before(async () => {
    source = await startSource();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-kn-'));
  });
  after(async () => {
    await fn?.kill();
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers the watchdog's /_/health itself, listens on every interface, and writes no lock file", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-kn-tmp-'));
    fn = await startFunction({ IMAGE_DIR: dir, IMAGE_URL: source.url, upstream_url: '', suppress_lock: 'true', TMPDIR: tmp });
    const res = await fetch(`${fn.url}/_/health`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'OK');
    assert.equal(await status(`${fn.url}/_/health`, { method: 'POST' }), 405);
    assert.ok(await canConnect('127.0.0.2', fn.port), 'Knative reaches the container on its pod IP');
    assert.equal(fs.existsSync(path.join(tmp, '.lock')), false);
    assert.equal(await status(`${fn.url}/`), 200);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
