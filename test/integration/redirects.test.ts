// Redirects stay where the operator pointed. The stand-in source listens on this
// machine's own non-loopback address (eth0's), so IMAGE_URL is not a loopback
// address, yet reaches it; its redirect then points at the function's own
// loopback port, /_shutdown with ENABLE_SHUTDOWN=true, by address and by a name
// (localhost) that resolves there. Neither may be followed. And no log line
// carries a password from IMAGE_URL or from a redirect.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { eventually, startFunction } from '../support/fn.ts';
import { getPage } from '../support/page.ts';
import { cannotRunHere } from '../support/skip.ts';
import { startSource, type ImageSource } from '../support/source.ts';

/** An address of this machine that is not loopback: what a source elsewhere on the network looks like from here. */
function outsideAddress(): string | undefined {
  const all = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
  return all.find((a) => !a.internal && a.family === 'IPv4')?.address ?? all.find((a) => !a.internal && a.family === 'IPv6' && !a.address.startsWith('fe80'))?.address;
}

describe('redirects stay where the operator pointed, and passwords stay out of the log', () => {
  const address = outsideAddress();
  let source: ImageSource;
  let root: string;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-redirects-'));
    if (address !== undefined) source = await startSource({ host: address });
  });
  after(async () => {
    await source?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  for (const target of ['127.0.0.1', 'localhost']) {
    it(`a 302 from the source to http://${target}:<its own port>/_shutdown is not followed: the function lives and says why`, async (t: TestContext) => {
      if (address === undefined) return cannotRunHere(t, 'this machine has no address but loopback');
      const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: path.join(root, target), ENABLE_SHUTDOWN: 'true', FETCH_TIMEOUT_MS: '3000' });
      source.redirectTo = `http://${target}:${fn.port}/_shutdown`;
      try {
        assert.equal((await getPage(`${fn.url}/`)).status, 503, 'no picture');
        const failed = await eventually(() => fn.logs().find((line) => line.msg === 'refresh failed'), 5_000, 'the refresh failed');
        assert.equal(failed.code, 'ADDRESS_REFUSED', JSON.stringify(failed));
        assert.equal(fn.logs().some((line) => String(line.msg).startsWith('GET /_shutdown')), false, '/_shutdown was never reached');
        await new Promise((r) => setTimeout(r, 300)); // /_shutdown exits 100 ms after its answer
        assert.equal(fn.child.exitCode, null, 'still running');
        assert.equal((await getPage(`${fn.url}/_/health`)).status, 200);
      } finally {
        source.redirectTo = undefined;
        await fn.kill();
      }
    });
  }

  it("a source on IMAGE_URL's own kind of address still redirects within it (the stand-in's /1200 to /id/...)", async (t: TestContext) => {
    if (address === undefined) return cannotRunHere(t, 'this machine has no address but loopback');
    const fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: path.join(root, 'within') });
    try {
      assert.equal((await getPage(`${fn.url}/`)).status, 200);
    } finally {
      await fn.kill();
    }
  });

  it("no log line carries IMAGE_URL's password or a redirect's, when the download works and when it fails", async (t: TestContext) => {
    if (address === undefined) return cannotRunHere(t, 'this machine has no address but loopback');
    const withPassword = new URL(source.url);
    withPassword.username = 'picsum';
    withPassword.password = 's3cret-pw';
    const fn = await startFunction({ IMAGE_URL: withPassword.href, IMAGE_DIR: path.join(root, 'password'), FETCH_TIMEOUT_MS: '3000', IMAGE_TTL_SECONDS: '1' });
    try {
      // The redirect names a password of its own, as a signed URL might.
      source.redirectTo = `${withPassword.protocol}//cdn:redirect-pw@${withPassword.host}/id/1/1200/1200.jpg`;
      assert.equal((await getPage(`${fn.url}/`)).status, 200);
      await eventually(() => fn.logs().find((line) => line.msg === 'download done'), 5_000, 'download done');
      // And a failure: a redirect that may not be followed, its URL with a password.
      source.redirectTo = `http://user:redirect-pw@127.0.0.1:${fn.port}/x`;
      await new Promise((r) => setTimeout(r, 1100)); // past the 1 s TTL
      await getPage(`${fn.url}/`);
      await eventually(() => fn.logs().find((line) => line.msg === 'refresh failed'), 5_000, 'refresh failed');
      const out = fn.output();
      assert.ok(out.includes('todo-app started') && out.includes('download start'), out);
      assert.equal(out.includes('s3cret-pw'), false, `IMAGE_URL's password in the log:\n${out}`);
      assert.equal(out.includes('redirect-pw'), false, `a redirect's password in the log:\n${out}`);
    } finally {
      source.redirectTo = undefined;
      await fn.kill();
    }
  });
});
