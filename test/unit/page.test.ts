import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CONTENT_SECURITY_POLICY, every, httpDateOf, precondition, renderPage, renderUnavailable } from '../../functions/todo-app/page.ts';
import type { CachePolicy } from '../../functions/todo-app/caching.ts';
import { makeJpeg } from '../support/source.ts';

describe('the page', async () => {
  const image = await makeJpeg(3, 1200, 1200, true);
  const fetchedAt = Date.parse('2026-11-25T10:00:00Z');
  const picsum = new URL('https://picsum.photos/1200');
  const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 600_000, source: picsum, photoId: '237' });
  const html = page.body.toString('utf8');
  const headers = page.headersAt(fetchedAt);

  it('embeds exactly the image bytes as a data URI', () => {
    const match = /src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)"/.exec(html);
    assert.ok(match);
    assert.ok(Buffer.from(match[1]!, 'base64').equals(image));
  });

  it('says what it shows and when it changes: the source, the TTL, the photo, both times', () => {
    assert.match(html, /<title>Random photo · todo-app<\/title>/, 'a photo page, of todo-app');
    assert.match(html, /<h1>Random photo<\/h1>/);
    assert.match(html, /<footer>todo-app, the project of the DevOps with Kubernetes course<\/footer>/);
    assert.match(html, /A new photo from Lorem Picsum every 10 minutes\./);
    assert.match(html, /<img [^>]*alt="A random photo from Lorem Picsum"/);
    assert.match(html, /Photo 237 from Lorem Picsum \(<a href="https:\/\/picsum.photos\/id\/237\/info">author and source<\/a>\)/);
    assert.match(html, /fetched <time datetime="2026-11-25T10:00:00.000Z">/);
    assert.match(html, /first visit after <time datetime="2026-11-25T10:10:00.000Z">/);
    assert.match(html, /main\{[^}]*text-align:center/, 'the picture is centred');
  });

  it('names another source by its host, and never shows an id that is not a number', () => {
    const other = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 90_000, source: new URL('http://images.example:8080/x'), photoId: '<b>x</b>' }).body.toString();
    assert.match(other, /A new photo from images\.example:8080 every 90 seconds\./);
    assert.match(other, /A photo from images\.example:8080, fetched/);
    assert.doesNotMatch(other, /<b>x<\/b>/);
    const none = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 3_600_000, source: picsum }).body.toString();
    assert.match(none, /every hour\./);
    assert.match(none, /A photo from Lorem Picsum, fetched/);
  });

  it('reads the TTL the way people say it', () => {
    assert.deepEqual([1, 30, 60, 90, 600, 3600, 7200, 86_400].map((s) => every(s * 1000)), [
      'every second', 'every 30 seconds', 'every minute', 'every 90 seconds', 'every 10 minutes', 'every hour', 'every 2 hours', 'every 24 hours',
    ]);
  });

  it('asks for nothing outside itself: only data: URIs load; the one link is the photo credit', () => {
    const loads = [...html.matchAll(/<(?:img|link|script|iframe)[^>]*(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(loads.length >= 2);
    for (const ref of loads) assert.ok(ref.startsWith('data:'), ref);
    assert.deepEqual([...html.matchAll(/<a href="([^"]*)"/g)].map((m) => m[1]), ['https://picsum.photos/id/237/info']);
  });

  it('allows exactly its own inline style by hash, and data images', () => {
    const style = /<style>([^<]*)<\/style>/.exec(html)![1]!;
    const hash = createHash('sha256').update(style).digest('base64');
    assert.ok(CONTENT_SECURITY_POLICY.includes(`'sha256-${hash}'`));
    assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
    assert.match(CONTENT_SECURITY_POLICY, /img-src data:/);
    assert.equal(headers['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
    assert.equal(headers['X-Content-Type-Options'], 'nosniff');
  });

  it('has headers made once: length, a strong ETag, Last-Modified in whole seconds', () => {
    assert.equal(headers['Content-Length'], page.body.length);
    assert.equal(headers['Last-Modified'], 'Wed, 25 Nov 2026 10:00:00 GMT');
    assert.equal(headers.ETag, page.etag);
    assert.match(page.etag, /^"[A-Za-z0-9_-]{27}"$/);
  });

  it('may be cached until the next image is due, to the second, with the stale windows stated', () => {
    const at = (ms: number): string => page.headersAt(fetchedAt + ms)['Cache-Control'] as string;
    assert.equal(at(0), 'max-age=600, stale-while-revalidate=10, stale-if-error=3600');
    assert.equal(at(400), 'max-age=599, stale-while-revalidate=10, stale-if-error=3600');
    assert.equal(at(1_000), 'max-age=599, stale-while-revalidate=10, stale-if-error=3600');
    assert.equal(at(598_999), 'max-age=1, stale-while-revalidate=10, stale-if-error=3600');
    assert.equal(page.expiresAt, fetchedAt + 600_000);
    // Never past the expiry while a whole second is left: now + max-age <= expiresAt.
    for (let ms = 0; ms < 599_000; ms += 997) {
      const maxAge = Number(/max-age=(\d+)/.exec(at(ms))![1]);
      assert.ok(ms + maxAge * 1000 <= 600_000 && ms + maxAge * 1000 > 598_000, `at +${ms} ms: max-age=${maxAge}`);
    }
  });

  it('asks caches to check again in a second in its last second and past its TTL, while the function refreshes', () => {
    for (const ms of [599_001, 600_000, 600_001, 3_600_000]) {
      assert.equal(page.headersAt(fetchedAt + ms)['Cache-Control'], 'max-age=1, stale-while-revalidate=10, stale-if-error=3600', `at +${ms} ms`);
    }
  });

  it('builds its header set at most once a second: the same object within a second, a new one the next', () => {
    const first = page.headersAt(fetchedAt + 10_100);
    assert.equal(page.headersAt(fetchedAt + 10_900), first);
    assert.equal(page.headersAt(fetchedAt + 11_000), first);
    assert.notEqual(page.headersAt(fetchedAt + 11_001), first);
    assert.equal(page.headersAt(fetchedAt + 700_000), page.headersAt(fetchedAt + 900_000), 'past the TTL the set stays the same');
  });

  it('answers a 304 with its validators and the same Cache-Control as the 200 at that moment (RFC 9110 15.4.5)', () => {
    const now = fetchedAt + 42_500;
    assert.deepEqual(page.notModifiedHeadersAt(now), {
      ETag: page.etag,
      'Last-Modified': 'Wed, 25 Nov 2026 10:00:00 GMT',
      'Cache-Control': page.headersAt(now)['Cache-Control'],
    });
  });

  it('follows the CACHE_* settings: off, capped, without stale windows', () => {
    const with_ = (caching: CachePolicy, ms = 0) =>
      renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 600_000, source: picsum, caching }).headersAt(fetchedAt + ms)['Cache-Control'];
    assert.equal(with_({ maxAgeSeconds: 0, staleWhileRevalidateSeconds: 10, staleIfErrorSeconds: 60 }), 'no-cache');
    assert.equal(with_({ maxAgeSeconds: 30, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 }), 'max-age=30');
    assert.equal(with_({ maxAgeSeconds: 30, staleWhileRevalidateSeconds: 5, staleIfErrorSeconds: 0 }, 590_000), 'max-age=10, stale-while-revalidate=5');
    assert.equal(with_({ maxAgeSeconds: undefined, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 7 }), 'max-age=600, stale-if-error=7');
  });

  it('changes its ETag with the image and keeps it for the same image', () => {
    const same = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 600_000, source: picsum, photoId: '237' });
    const later = renderPage({ image, mime: 'image/jpeg', fetchedAt: fetchedAt + 1, ttlMs: 600_000, source: picsum, photoId: '237' });
    assert.equal(same.etag, page.etag);
    assert.notEqual(later.etag, page.etag);
  });

  it('weighs at most 1.4 times the image', () => {
    assert.ok(page.body.length <= 1.4 * image.length, `${page.body.length} vs ${image.length}`);
  });

  it('If-None-Match gives 304 to GET and HEAD, weak or strong, in a list or as *; 412 to any other method (RFC 9110 13.1.2)', () => {
    const at = (method: string, inm: string): string => precondition(method, { 'if-none-match': inm }, page);
    for (const inm of [page.etag, `"x", W/${page.etag}`, '*']) {
      assert.equal(at('GET', inm), 'not-modified', inm);
      assert.equal(at('HEAD', inm), 'not-modified', inm);
      assert.equal(at('POST', inm), 'failed', inm);
    }
    assert.equal(at('GET', '"other"'), 'send');
    assert.equal(at('POST', '"other"'), 'send');
    assert.equal(precondition('GET', {}, page), 'send');
    assert.equal(precondition('GET', { 'if-none-match': page.etag, 'cache-control': 'no-cache' }, page), 'not-modified', 'no-cache is for caches, not for the origin');
  });

  it('If-Modified-Since gives 304 only to GET and HEAD, only as a valid HTTP-date, and only without If-None-Match (RFC 9110 13.1.3)', () => {
    const lm = headers['Last-Modified'] as string;
    const ims = (value: string, method = 'GET', more: Record<string, string> = {}): string => precondition(method, { 'if-modified-since': value, ...more }, page);
    assert.equal(ims(lm), 'not-modified');
    assert.equal(ims(lm, 'HEAD'), 'not-modified');
    assert.equal(ims('Wed, 25 Nov 2026 10:05:00 GMT'), 'not-modified');
    assert.equal(ims('Wednesday, 25-Nov-26 10:05:00 GMT'), 'not-modified', 'the obsolete RFC 850 form');
    assert.equal(ims('Wed Nov 25 10:05:00 2026'), 'not-modified', 'asctime, read as GMT');
    assert.equal(ims('Wed, 25 Nov 2026 09:59:59 GMT'), 'send');
    assert.equal(ims(lm, 'POST'), 'send', 'ignored on POST');
    assert.equal(ims('2027'), 'send', 'not an HTTP-date');
    assert.equal(ims('yesterday'), 'send');
    assert.equal(ims('2027-01-01T00:00:00Z'), 'send', 'ISO 8601 is not an HTTP-date');
    assert.equal(ims(lm, 'GET', { 'if-none-match': '"other"' }), 'send', 'If-None-Match decides when both are sent');
    assert.equal(ims('Wed, 25 Nov 2026 09:00:00 GMT', 'GET', { 'if-none-match': page.etag }), 'not-modified');
    assert.equal(httpDateOf('Sun Nov  6 08:49:37 1994'), 'Sun, 06 Nov 1994 08:49:37 GMT');
  });

  it('says when the photo is unavailable, with Retry-After, and tries again by itself with no script', () => {
    const down = renderUnavailable(7, picsum);
    const text = down.body.toString();
    assert.equal(down.headers['Retry-After'], 7);
    // A shared cache answers it within its Retry-After (a second less: caches count whole seconds), never stale; a browser keeps none.
    assert.equal(down.headers['Cache-Control'], 'max-age=0, s-maxage=6');
    assert.equal(renderUnavailable(1, picsum).headers['Cache-Control'], 'no-store');
    assert.equal(renderUnavailable(7, picsum, { maxAgeSeconds: 0, staleWhileRevalidateSeconds: 10, staleIfErrorSeconds: 10 }).headers['Cache-Control'], 'no-store');
    assert.equal(renderUnavailable(7, picsum, { maxAgeSeconds: 3, staleWhileRevalidateSeconds: 10, staleIfErrorSeconds: 10 }).headers['Cache-Control'], 'max-age=0, s-maxage=3');
    assert.match(text, /could not be fetched from Lorem Picsum yet\. This page tries again in 7 seconds\./);
    assert.match(text, /<meta http-equiv="refresh" content="7">/);
    assert.doesNotMatch(text, /<script/);
    assert.match(renderUnavailable(1, picsum).body.toString(), /in 1 second\./);
  });
});
