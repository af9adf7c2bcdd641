// Reading the function's answers the way a user's browser would see them.
import assert from 'node:assert/strict';

/** The image bytes inlined in the page, and their media type. */
export function imageOf(html: string): { mime: string; bytes: Buffer } {
  const match = /src="data:(image\/[a-z+]+);base64,([A-Za-z0-9+/=]+)"/.exec(html);
  assert.ok(match, `no inline image in the page: ${html.slice(0, 200)}`);
  return { mime: match[1]!, bytes: Buffer.from(match[2]!, 'base64') };
}

export async function getPage(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; html: string; ms: number }> {
  const started = performance.now();
  const response = await fetch(url, init);
  const html = await response.text();
  return { status: response.status, headers: response.headers, html, ms: performance.now() - started };
}
