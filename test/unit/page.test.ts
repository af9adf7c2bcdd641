import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CONTENT_SECURITY_POLICY, every, matchesEtag, notModified, renderPage, renderUnavailable } from '../../functions/todo-app/page.ts';
import { makeJpeg } from '../support/source.ts';

describe('the page', async () => {
  const image = await makeJpeg(3, 1200, 1200, true);
  const fetchedAt = Date.parse('2026-11-25T10:00:00Z');
  const picsum = new URL('https://picsum.photos/1200');
  const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs: 600_000, source: picsum, photoId: '237' });
  const html = page.body.toString('utf8');

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
    assert.equal(page.headers['Content-Security-Policy'], CONTENT_SECURITY_POLICY);
    assert.equal(page.headers['X-Content-Type-Options'], 'nosniff');
  });

  it('has headers made once: length, a strong ETag, Last-Modified in whole seconds, no-cache', () => {
    assert.equal(page.headers['Content-Length'], page.body.length);
    assert.equal(page.headers['Last-Modified'], 'Wed, 25 Nov 2026 10:00:00 GMT');
    assert.equal(page.headers.ETag, page.etag);
    assert.match(page.etag, /^"[A-Za-z0-9_-]{27}"$/);
    assert.equal(page.headers['Cache-Control'], 'no-cache');
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

  it('matches If-None-Match as RFC 9110 says', () => {
    assert.equal(matchesEtag(page.etag, page.etag), true);
    assert.equal(matchesEtag(`"x", W/${page.etag}`, page.etag), true);
    assert.equal(matchesEtag('*', page.etag), true);
    assert.equal(matchesEtag('"other"', page.etag), false);
    assert.equal(matchesEtag(undefined, page.etag), false);
  });

  it('If-Modified-Since gives 304 like If-None-Match, and If-None-Match wins when both are sent (RFC 9110 13.2.2)', () => {
    const lm = page.headers['Last-Modified'] as string;
    assert.equal(notModified({ 'if-modified-since': lm }, page), true);
    assert.equal(notModified({ 'if-modified-since': 'Wed, 25 Nov 2026 10:05:00 GMT' }, page), true);
    assert.equal(notModified({ 'if-modified-since': 'Wed, 25 Nov 2026 09:59:59 GMT' }, page), false);
    assert.equal(notModified({ 'if-modified-since': 'yesterday' }, page), false);
    assert.equal(notModified({ 'if-none-match': '"other"', 'if-modified-since': lm }, page), false);
    assert.equal(notModified({ 'if-none-match': page.etag, 'if-modified-since': 'Wed, 25 Nov 2026 09:00:00 GMT' }, page), true);
    assert.equal(notModified({}, page), false);
  });

  it('says when the photo is unavailable, with Retry-After, and tries again by itself with no script', () => {
    const down = renderUnavailable(7, picsum);
    const text = down.body.toString();
    assert.equal(down.headers['Retry-After'], 7);
    assert.match(text, /could not be fetched from Lorem Picsum yet\. This page tries again in 7 seconds\./);
    assert.match(text, /<meta http-equiv="refresh" content="7">/);
    assert.doesNotMatch(text, /<script/);
    assert.match(renderUnavailable(1, picsum).body.toString(), /in 1 second\./);
  });
});
