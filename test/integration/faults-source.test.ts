// The source misbehaves in every way a real upstream does, while a real function
// process serves a stale image it saved earlier. The user keeps getting the old
// picture at once, the volume keeps it byte for byte, the process lives, the log
// says why, and a failing source is not called on every request.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { eventually, startFunction, type FunctionProcess } from '../support/fn.ts';
import { getPage as get, imageOf } from '../support/page.ts';
import { startSource, type ImageSource, type SourceMode } from '../support/source.ts';

const FETCH_TIMEOUT_MS = 2000;
const TTL_SECONDS = 1;
const MAX_IMAGE_BYTES = 1024 * 1024;




const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const temps = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.tmp'));
const failures = (fn: FunctionProcess): Array<Record<string, unknown>> => fn.logs().filter((line) => line.msg === 'refresh failed');

// Every test owns its source, folder and process; whatever a test leaves running is stopped here.
let cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

interface Setup {
  source: ImageSource;
  fn: FunctionProcess;
  dir: string;
}

async function start(env: Record<string, string> = {}): Promise<Setup> {
  const source = await startSource({ width: 400, height: 300, noise: true });
  cleanups.push(() => source.close().catch(() => undefined));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faults-source-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const fn = await startFunction({
    IMAGE_DIR: dir,
    IMAGE_URL: source.url,
    IMAGE_TTL_SECONDS: String(TTL_SECONDS),
    FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS),
    MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
    ...env,
  });
  cleanups.push(() => fn.kill('SIGKILL'));
  return { source, fn, dir };
}

/** A first good download, then the TTL runs out: the function holds a stale image it saved itself. */
async function startWithStaleImage(): Promise<Setup & { saved: Buffer; stamp: string }> {
  const setup = await start();
  const first = await get(setup.fn.url);
  assert.equal(first.status, 200, setup.fn.output());
  const saved = readFileSync(path.join(setup.dir, 'image.jpg'));
  assert.ok(saved.equals(setup.source.pictures[0]!), 'the first picture was saved as downloaded');
  assert.ok(imageOf(first.body).equals(saved));
  const stamp = readFileSync(path.join(setup.dir, '.ts'), 'utf8');
  await sleep(TTL_SECONDS * 1000 + 300);
  return { ...setup, saved, stamp };
}

interface Fault {
  name: string;
  /** Puts the source into the fault. */
  apply(source: ImageSource): Promise<void> | void;
  code: string;
  reason?: RegExp;
}

const byMode = (mode: SourceMode) => (source: ImageSource) => void (source.mode = mode);

const faults: Fault[] = [
  { name: 'a 5xx answer', apply: byMode('error'), code: 'HTTP_STATUS', reason: /503/ },
  { name: 'no answer at all (hang)', apply: byMode('hang'), code: 'TIMEOUT' },
  { name: 'the connection dropped mid-body', apply: byMode('drop'), code: 'NETWORK' },
  { name: 'a body that is not an image but says image/jpeg', apply: byMode('not-image'), code: 'UNDECODABLE' },
  { name: 'a real image labelled text/html', apply: byMode('wrong-type'), code: 'NOT_IMAGE', reason: /text\/html/ },
  { name: 'a body over MAX_IMAGE_BYTES streamed without content-length', apply: byMode('huge'), code: 'TOO_LARGE', reason: /while streaming/ },
  { name: 'a redirect loop', apply: byMode('loop'), code: 'REDIRECTS' },
  { name: 'connection refused', apply: (source) => source.close(), code: 'NETWORK', reason: /ECONNREFUSED/ },
  { name: 'a slow source (a trickle longer than FETCH_TIMEOUT_MS)', apply: byMode('trickle'), code: 'TIMEOUT' },
];

describe('with a stale image cached, a failing source', () => {
  for (const fault of faults) {
    it(`${fault.name}: the old image is served at once and kept byte for byte, the log says ${fault.code}`, async (t) => {
      const { source, fn, dir, saved, stamp } = await startWithStaleImage();
      await fault.apply(source);

      // The first stale request starts the refresh; the second comes while it is in flight.
      for (let i = 0; i < 2; i++) {
        const answer = await get(fn.url);
        assert.equal(answer.status, 200);
        assert.ok(imageOf(answer.body).equals(saved), 'the page carries the old image');
        assert.ok(answer.ms < FETCH_TIMEOUT_MS, `answered within the fetch bound, took ${Math.round(answer.ms)} ms`);
      }

      const [failed] = await eventually(() => failures(fn).length > 0 && failures(fn), FETCH_TIMEOUT_MS + 5000, `a 'refresh failed' line\n${fn.output()}`);
      t.diagnostic(`refresh failed: ${failed!.code}: ${failed!.reason}`);
      assert.equal(failed!.code, fault.code, JSON.stringify(failed));
      if (fault.reason) assert.match(String(failed!.reason), fault.reason);
      assert.equal(failed!.keeping, 'the current image');
      assert.ok(Number(failed!.retryInMs) > 0, 'a back-off follows the failure');

      const after = await get(fn.url);
      assert.equal(after.status, 200);
      assert.ok(imageOf(after.body).equals(saved), 'still the old image after the failure');
      assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(saved), 'image.jpg is unchanged byte for byte');
      assert.equal(readFileSync(path.join(dir, '.ts'), 'utf8'), stamp, '.ts is unchanged');
      assert.deepEqual(temps(dir), [], 'no temp file left');
      assert.equal(fn.child.exitCode, null, 'the process lives');
      assert.equal(fn.child.signalCode, null, 'the process lives');
    });
  }

  it('is called as the back-off allows over 10 s of steady requests, not once per request', async (t) => {
    const { source, fn, saved } = await startWithStaleImage();
    source.mode = 'error';
    const downloadsBefore = source.downloads;
    const requestsBefore = source.requests;

    let answered = 0;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      // 20 requests a second, each checked: the old image, every time.
      const batch = await Promise.all([get(fn.url), sleep(50)]);
      assert.equal(batch[0].status, 200);
      assert.ok(imageOf(batch[0].body).equals(saved));
      answered++;
    }

    const attempts = source.downloads - downloadsBefore;
    const calls = source.requests - requestsBefore;
    t.diagnostic(`${answered} requests in 10 s; the source was tried ${attempts} times (${calls} calls with redirects)`);
    // Back-off 1, 2, 4, 8 s (±20%) from the first failure: at most 4 tries fit in 10 s.
    assert.ok(answered >= 100, `steady requests were made (${answered})`);
    assert.ok(attempts <= 6, `source tried ${attempts} times for ${answered} requests`);
    assert.ok(calls <= 12, `source called ${calls} times (redirects included) for ${answered} requests`);
    assert.ok(attempts >= 2, `the source is tried again after the back-off (${attempts} tries)`);
    assert.equal(failures(fn).length, attempts, 'each try logged one refresh failed');
    const waits = failures(fn).map((line) => Number(line.retryInMs));
    for (let i = 1; i < waits.length; i++) {
      assert.ok(waits[i]! > waits[i - 1]!, `the back-off grows: ${waits.join(', ')} ms`);
    }
  });
});

describe('with no image and a failing source', () => {
  it('answers 503 with Retry-After within FETCH_TIMEOUT_MS, then recovers by itself when the source comes back', async () => {
    const { source, fn, dir } = await start();
    source.mode = 'hang';

    const first = await get(fn.url);
    assert.equal(first.status, 503, first.body);
    assert.ok(first.ms < FETCH_TIMEOUT_MS + 2000, `503 within the fetch bound, took ${Math.round(first.ms)} ms`);
    assert.match(first.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.match(first.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(first.body, /could not be fetched/);
    // Shared caches may answer it within its Retry-After (a second less, for their whole-second clocks); browsers keep none.
    const retryAfter = Number(first.headers.get('retry-after'));
    assert.equal(first.headers.get('cache-control'), retryAfter > 1 ? `max-age=0, s-maxage=${retryAfter - 1}` : 'no-store');

    // During the back-off the answer is 503 at once, and the source is not called.
    const during = await get(fn.url);
    assert.equal(during.status, 503);
    assert.match(during.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.ok(existsSync(path.join(dir, 'image.jpg')) === false, 'nothing saved');
    assert.equal(failures(fn)[0]?.code, 'TIMEOUT');
    assert.equal(failures(fn)[0]?.keeping, 'nothing');

    source.mode = 'ok';
    const pid = fn.child.pid;
    const recovered = await eventually(
      async () => {
        const answer = await get(fn.url);
        assert.ok(answer.status === 200 || answer.status === 503, `200 or 503, got ${answer.status}`);
        return answer.status === 200 && answer;
      },
      20_000,
      `a 200 after the source came back\n${fn.output()}`,
    );
    const served = source.served.at(-1)!;
    assert.ok(imageOf(recovered.body).equals(served), 'the page carries the picture just downloaded');
    assert.ok(readFileSync(path.join(dir, 'image.jpg')).equals(served), 'and image.jpg holds it');
    assert.equal(fn.child.pid, pid);
    assert.equal(fn.child.exitCode, null, 'no restart: the same process recovered');
  });
});
