// Reading the function's answers the way a user's browser would see them.
import assert from 'node:assert/strict';

const INLINE = /<img src="data:(image\/[a-z+]+);base64,([A-Za-z0-9+/=]+)"/;

function inline(html: string): RegExpExecArray {
  const match = INLINE.exec(html);
  assert.ok(match, `no inline image in the page: ${html.slice(0, 200)}`);
  return match;
}

/** The image bytes the page carries inline. */
export function imageOf(html: string): Buffer {
  return Buffer.from(inline(html)[2]!, 'base64');
}

/** The media type of the inline image. */
export function imageMimeOf(html: string): string {
  return inline(html)[1]!;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  ms: number;
}

/** One GET (or other request), read to the end and timed to the last byte. */
export async function getPage(url: string, init?: RequestInit): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(url, init);
  const body = await response.text();
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}
