// Clocks that lie: a lock dated in the future (a holder whose clock ran ahead, or
// `touch -d 2099`), a process clock stepped back after a download, a `.ts` written by
// a replica whose clock runs a few minutes ahead. The rule is the one `.ts` has: a
// time more than the clock skew (5 minutes) ahead counts for nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { eventually, repoRoot, startFunction } from '../support/fn.ts';
import { getPage } from '../support/page.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const HOUR_MS = 3600_000;

describe('clocks that lie', () => {
  let source: ImageSource;
  let root: string;
  before(async () => {
    source = await startSource();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-clocks-'));
  });
  after(async () => {
    await source.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a refresh lock dated 2099 is taken over at once: the first visitor gets the picture, not 503s until 2099', async () => {
    const dir = path.join(root, 'lock-2099');
    fs.mkdirSync(path.join(dir, '.refresh.lock'), { recursive: true });
    fs.utimesSync(path.join(dir, '.refresh.lock'), new Date('2099-01-01T00:00:00Z'), new Date('2099-01-01T00:00:00Z'));
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, FETCH_TIMEOUT_MS: '5000' });
    try {
      const before = source.downloads;
      const page = await getPage(`${fn.url}/`);
      assert.equal(page.status, 200);
      assert.equal(source.downloads, before + 1);
      assert.ok(fn.logs().some((line) => line.msg === 'refresh lock dated in the future: taken over'));
    } finally {
      await fn.kill();
    }
  });

  it('a clock stepped back an hour after a download: the page in memory is stale at once, not for an hour; a minute back is within the skew', async () => {
    const dir = path.join(root, 'stepped-back');
    const offsetFile = path.join(root, 'offset');
    fs.writeFileSync(offsetFile, '0');
    const fake = pathToFileURL(path.join(repoRoot, 'test/fixtures/clock-offset.mjs')).href;
    const fn = await startFunction(
      { IMAGE_URL: source.url, IMAGE_DIR: dir, CLOCK_OFFSET_FILE: offsetFile },
      { wrap: (command, args) => ({ command, args: ['--import', fake, ...args] }) },
    );
    try {
      const first = await getPage(`${fn.url}/`);
      assert.equal(first.status, 200);
      const downloads = source.downloads;
      fs.writeFileSync(offsetFile, String(-60_000));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await getPage(`${fn.url}/`)).headers.get('etag'), first.headers.get('etag'));
      assert.equal(source.downloads, downloads, 'a minute back: still fresh');
      fs.writeFileSync(offsetFile, String(-HOUR_MS));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await getPage(`${fn.url}/`)).status, 200, 'the old page, while the new one comes');
      await eventually(async () => (await getPage(`${fn.url}/`)).headers.get('etag') !== first.headers.get('etag'), 10_000, 'a new page');
      assert.equal(source.downloads, downloads + 1);
    } finally {
      await fn.kill();
    }
  });

  it("a .ts a few minutes ahead (a replica's clock runs fast) is trusted, and Last-Modified is never in the future", async () => {
    const dir = path.join(root, 'ahead');
    const seed = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir });
    assert.equal((await getPage(`${seed.url}/`)).status, 200);
    await seed.kill('SIGTERM');
    fs.writeFileSync(path.join(dir, '.ts'), new Date(Date.now() + 4 * 60_000).toISOString());
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir });
    try {
      const downloads = source.downloads;
      const page = await getPage(`${fn.url}/`);
      assert.equal(page.status, 200);
      assert.equal(source.downloads, downloads, 'within the skew: the saved picture is fresh');
      const lastModified = Date.parse(page.headers.get('last-modified')!);
      assert.ok(lastModified <= Date.now(), `Last-Modified ${page.headers.get('last-modified')} is in the future`);
    } finally {
      await fn.kill();
    }
  });
});
