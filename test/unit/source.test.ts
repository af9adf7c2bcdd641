import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { download, SourceError, type SourceErrorCode } from '../../functions/todo-app/source.ts';
import { startSource, type ImageSource, type SourceMode } from '../support/source.ts';

describe('the download', () => {
  let source: ImageSource;
  before(async () => {
    source = await startSource();
  });
  after(() => source.close());

  const options = { timeoutMs: 2000, maxBytes: 1024 * 1024 };

  it("follows Picsum's redirect and keeps the bytes and the Picsum-ID", async () => {
    source.mode = 'ok';
    const got = await download(new URL(source.url), options);
    assert.ok(got.bytes.equals(source.served.at(-1)!));
    assert.equal(got.contentType, 'image/jpeg');
    assert.match(got.picsumId ?? '', /^\d+$/);
    assert.match(got.finalUrl, /\/id\/\d+\/1200\/1200\.jpg$/);
  });

  const faults: Array<[SourceMode, SourceErrorCode, Partial<typeof options>?]> = [
    ['error', 'HTTP_STATUS'],
    ['wrong-type', 'NOT_IMAGE'],
    ['huge', 'TOO_LARGE'],
    ['loop', 'REDIRECTS'],
    ['hang', 'TIMEOUT', { timeoutMs: 300 }],
    ['drop', 'NETWORK'],
  ];
  for (const [mode, code, extra] of faults) {
    it(`fails with ${code} when the source is in mode ${mode}`, async () => {
      source.mode = mode;
      await assert.rejects(download(new URL(source.url), { ...options, ...extra }), (error: unknown) => {
        assert.ok(error instanceof SourceError, String(error));
        assert.equal(error.code, code, error.message);
        return true;
      });
    });
  }

  it('refuses a content-length over the cap before reading the body', async () => {
    source.mode = 'ok';
    await assert.rejects(download(new URL(source.url), { ...options, maxBytes: 100 }), (error: unknown) => {
      return error instanceof SourceError && error.code === 'TOO_LARGE' && /content-length/.test(error.message);
    });
  });

  it('stops when asked to', async () => {
    source.mode = 'hang';
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    await assert.rejects(download(new URL(source.url), { ...options, signal: stop.signal }), (error: unknown) => error instanceof SourceError && error.code === 'ABORTED');
  });
});
