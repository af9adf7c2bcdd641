import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CONTENT_SECURITY_POLICY, matchesEtag, renderPage, renderUnavailable } from '../../functions/todo-app/page.ts';
import { makeJpeg } from '../support/source.ts';

describe('the page', async () => {
  const image = await makeJpeg(3, 1200, 1200, true);
  const fetchedAt = Date.parse('2026-11-25T10:00:00Z');
  const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, nextDueAt: fetchedAt + 600_000 });
  const html = page.body.toString('utf8');

  it('embeds exactly the image bytes as a data URI', () => {
    const match = /src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)"/.exec(html);
    assert.ok(match);
    assert.ok(Buffer.from(match[1]!, 'base64').equals(image));
  });

  it('has the title, the heading, alt text and both times', () => {
    assert.match(html, /<title>Todo app<\/title>/);
    assert.match(html, /<h1>Todo app<\/h1>/);
    assert.match(html, /<img [^>]*alt="[^"]+"/);
    assert.match(html, /<time datetime="2026-11-25T10:00:00.000Z">/);
    assert.match(html, /<time datetime="2026-11-25T10:10:00.000Z">/);
  });

  it('asks for nothing outside itself', () => {
    const refs = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(refs.length >= 2);
    for (const ref of refs) assert.ok(ref.startsWith('data:'), ref);
  });

  it('allows exactly its own inline style by hash, and data images', () => {
    const style = /<style>([^<]*)<\/style>/.exec(html)![1]!;
    const hash = createHash('sha256').update(style).digest('base64');
    assert.ok(CONTENT_SECURITY_POLICY.includes(`'sha256-${hash}'`));
    assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
    assert.match(CONTENT_SECURITY_POLICY, /img-src data:/);
    assert.equal(page.headers['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
    assert.equal(page.headers['X-Content-Type-Options'], 'nosniff');
  });

  it('has headers made once: length, a strong ETag, no-cache', () => {
    assert.equal(page.headers['Content-Length'], page.body.length);
    assert.equal(page.headers.ETag, page.etag);
    assert.match(page.etag, /^"[A-Za-z0-9_-]{27}"$/);
    assert.equal(page.headers['Cache-Control'], 'no-cache');
  });

  it('changes its ETag with the image and keeps it for the same image', () => {
    const same = renderPage({ image, mime: 'image/jpeg', fetchedAt, nextDueAt: fetchedAt + 600_000 });
    const later = renderPage({ image, mime: 'image/jpeg', fetchedAt: fetchedAt + 1, nextDueAt: fetchedAt + 600_001 });
    assert.equal(same.etag, page.etag);
    assert.notEqual(later.etag, page.etag);
  });

  it('weighs at most 1.4 times the image', () => {
    assert.ok(page.body.length <= 1.4 * image.length, `${page.body.length} vs ${image.length}`);
  });

  it('matches If-None-Match as RFC 9110 says', () => {
    assert.equal(matchesEtag(page.etag, page.etag), true);
    assert.equal(matchesEtag(`"x", W/${page.etag}`, page.etag), true);
    assert.equal(matchesEtag('*', page.etag), true);
    assert.equal(matchesEtag('"other"', page.etag), false);
    assert.equal(matchesEtag(undefined, page.etag), false);
  });

  it('says when the image is unavailable, with Retry-After', () => {
    const down = renderUnavailable(7);
    assert.equal(down.headers['Retry-After'], 7);
    assert.match(down.body.toString(), /could not be fetched/);
    assert.match(down.body.toString(), /<title>/);
  });
});
