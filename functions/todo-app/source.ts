// The download from the image source, with got (imported lazily: it costs about
// 120 ms at start-up, which a cold start with a cached image must not pay).
// Every way a source can misbehave ends in a SourceError with a code to switch on.
import type { Got } from 'got';

export type SourceErrorCode = 'HTTP_STATUS' | 'NOT_IMAGE' | 'TOO_LARGE' | 'TIMEOUT' | 'REDIRECTS' | 'NETWORK' | 'ABORTED';

export class SourceError extends Error {
  constructor(
    readonly code: SourceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}

export interface DownloadOptions {
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

export interface Download {
  bytes: Buffer;
  contentType: string;
  /** Lorem Picsum names its pictures in this header. */
  picsumId: string | undefined;
  finalUrl: string;
  ms: number;
}

export const MAX_REDIRECTS = 5;

let client: Promise<Got> | undefined;

function got(): Promise<Got> {
  client ??= import('got').then((module) =>
    module.default.extend({
      retry: { limit: 0 },
      followRedirect: true,
      maxRedirects: MAX_REDIRECTS,
      throwHttpErrors: false,
      decompress: true,
      headers: { 'user-agent': 'todo-app (OpenFaaS function; image of the hour)', accept: 'image/*' },
    }),
  );
  return client;
}

function reasonOf(error: unknown): SourceError {
  if (error instanceof SourceError) return error;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  if (code === 'ETIMEDOUT') return new SourceError('TIMEOUT', message);
  if (code === 'ERR_TOO_MANY_REDIRECTS') return new SourceError('REDIRECTS', message);
  if (code === 'ERR_ABORTED' || (error as Error).name === 'AbortError') return new SourceError('ABORTED', message);
  return new SourceError('NETWORK', `${code ?? 'error'}: ${message}`);
}

export async function download(url: URL, options: DownloadOptions): Promise<Download> {
  const started = performance.now();
  const request = await got();
  // got keeps its listener on the signal after the body ends, and an abort then
  // would raise an unhandled error: give got a signal that lives as long as this download.
  const cancel = new AbortController();
  const onStop = (): void => cancel.abort();
  options.signal?.addEventListener('abort', onStop, { once: true });
  if (options.signal?.aborted) cancel.abort();
  const stream = request.stream(url, { timeout: { request: options.timeoutMs }, signal: cancel.signal });
  let contentType = '';
  let picsumId: string | undefined;
  let finalUrl = url.href;
  // got wraps the error a stream is destroyed with; keep ours to report it as is.
  let refused: SourceError | undefined;
  const refuse = (error: SourceError): void => {
    refused = error;
    stream.destroy(error);
  };
  stream.on('response', (response: { statusCode: number; headers: Record<string, string | string[] | undefined>; url: string }) => {
    finalUrl = response.url;
    contentType = String(response.headers['content-type'] ?? '');
    picsumId = response.headers['picsum-id'] as string | undefined;
    const length = Number(response.headers['content-length']);
    if (response.statusCode !== 200) {
      refuse(new SourceError('HTTP_STATUS', `the source answered ${response.statusCode}`));
    } else if (!/^image\//i.test(contentType)) {
      refuse(new SourceError('NOT_IMAGE', `the source answered content-type ${JSON.stringify(contentType)}, not image/*`));
    } else if (length > options.maxBytes) {
      refuse(new SourceError('TOO_LARGE', `content-length ${length} is over MAX_IMAGE_BYTES ${options.maxBytes}`));
    }
  });
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > options.maxBytes) {
        throw new SourceError('TOO_LARGE', `the body passed MAX_IMAGE_BYTES ${options.maxBytes} while streaming`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    stream.destroy();
    throw refused ?? reasonOf(error);
  } finally {
    options.signal?.removeEventListener('abort', onStop);
  }
  return { bytes: Buffer.concat(chunks, size), contentType, picsumId, finalUrl, ms: Math.round(performance.now() - started) };
}
