// The download from the image source, with got (imported lazily: it costs about
// 120 ms at start-up, which a cold start with a cached image must not pay).
// Every way a source can misbehave ends in a SourceError with a code to switch on.
//
// The source decides where redirects go, so where the function connects is
// checked at connect time: every connection of a download (the first and each
// redirect's) must go to a public address, or to an address of a kind IMAGE_URL
// itself has (IMAGE_URL's literal address, or what its name resolves to at the
// start of the download: a source in the cluster, on 10.x, may redirect within
// 10.x, never to loopback or 169.254.169.254). Names are checked on the
// addresses they resolve to, in the lookup the connection itself uses (got's
// dnsLookup), so a DNS answer cannot point elsewhere than what was checked;
// literal addresses in a redirect are checked before it is followed. The kinds
// are ipaddr.js's ranges (what proxy-addr and Express use); 'unicast' is public.
import type { Got } from 'got';
import type { LookupAddress, LookupOptions } from 'node:dns';

export type SourceErrorCode = 'HTTP_STATUS' | 'NOT_IMAGE' | 'TOO_LARGE' | 'TIMEOUT' | 'REDIRECTS' | 'ADDRESS_REFUSED' | 'NETWORK' | 'ABORTED';

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

type IpAddr = typeof import('ipaddr.js');
let client: Promise<{ got: Got; ipaddr: IpAddr }> | undefined;

function got(): Promise<{ got: Got; ipaddr: IpAddr }> {
  client ??= Promise.all([import('got'), import('ipaddr.js')]).then(([module, ipaddr]) => ({
    ipaddr: (ipaddr as unknown as { default: IpAddr }).default ?? ipaddr,
    got: module.default.extend({
      retry: { limit: 0 },
      followRedirect: true,
      maxRedirects: MAX_REDIRECTS,
      throwHttpErrors: false,
      decompress: true,
      headers: { 'user-agent': 'todo-app (OpenFaaS function; image of the hour)', accept: 'image/*' },
    }),
  }));
  return client;
}

/** node:dns, loaded with the first download: its require costs 2 ms of a cold start that never downloads. */
function dns(): typeof import('node:dns') {
  return require('node:dns') as typeof import('node:dns');
}

/** A URL as a log line may carry it: a user name and a password in it are replaced. */
export function withoutCredentials(url: URL | string): string {
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return parsed.href;
  if (parsed.username !== '') parsed.username = 'REDACTED';
  if (parsed.password !== '') parsed.password = 'REDACTED';
  return parsed.href;
}

/** A message that may quote a URL, with any user:password@ in it replaced. */
export function withoutCredentialsIn(text: string): string {
  return text.replace(/\/\/[^/\s@]*@/g, '//REDACTED@');
}

/** The kinds of address a download of `url` may connect to: public ones, and the kinds of IMAGE_URL's own addresses. */
async function allowedRanges(url: URL, ipaddr: IpAddr): Promise<Set<string>> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const own = ipaddr.isValid(host) ? [host] : (await dns().promises.lookup(host, { all: true }).catch(() => [] as LookupAddress[])).map((a) => a.address);
  return new Set(['unicast', ...own.map((address) => ipaddr.process(address).range())]);
}

/** dns.lookup for got's connections, keeping only addresses of the allowed kinds. */
function guardedLookup(allowed: Set<string>, ipaddr: IpAddr) {
  return (hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void): void => {
    dns().lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error);
      const kept = addresses.filter((a) => allowed.has(ipaddr.process(a.address).range()));
      if (kept.length === 0) {
        const shown = addresses.map((a) => `${a.address} (${ipaddr.process(a.address).range()})`).join(', ');
        return callback(Object.assign(new Error(`${hostname} resolves to ${shown}, not an address IMAGE_URL may lead to`), { code: 'ADDRESS_REFUSED' }));
      }
      if (options.all) callback(null, kept);
      else callback(null, kept[0]!.address, kept[0]!.family);
    });
  };
}

function reasonOf(error: unknown): SourceError {
  if (error instanceof SourceError) return error;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  if (code === 'ETIMEDOUT') return new SourceError('TIMEOUT', message);
  if (code === 'ERR_TOO_MANY_REDIRECTS') return new SourceError('REDIRECTS', message);
  if (code === 'ADDRESS_REFUSED') return new SourceError('ADDRESS_REFUSED', message);
  if (code === 'ERR_ABORTED' || (error as Error).name === 'AbortError') return new SourceError('ABORTED', message);
  return new SourceError('NETWORK', `${code ?? 'error'}: ${message}`);
}

export async function download(url: URL, options: DownloadOptions): Promise<Download> {
  const started = performance.now();
  const { got: request, ipaddr } = await got();
  const allowed = await allowedRanges(url, ipaddr);
  // got keeps its listener on the signal after the body ends, and an abort then
  // would raise an unhandled error: give got a signal that lives as long as this download.
  const cancel = new AbortController();
  const onStop = (): void => cancel.abort();
  options.signal?.addEventListener('abort', onStop, { once: true });
  if (options.signal?.aborted) cancel.abort();
  // got wraps the error a stream is destroyed with; keep ours to report it as is.
  let refused: SourceError | undefined;
  const stream = request.stream(url, {
    timeout: { request: options.timeoutMs },
    signal: cancel.signal,
    dnsLookup: guardedLookup(allowed, ipaddr) as never,
    hooks: {
      beforeRedirect: [
        (next) => {
          // A literal address is connected to without a lookup: it is checked here, before the redirect is followed.
          const host = next.url instanceof URL ? next.url.hostname.replace(/^\[|\]$/g, '') : '';
          if (ipaddr.isValid(host) && !allowed.has(ipaddr.process(host).range())) {
            refused = new SourceError('ADDRESS_REFUSED', `a redirect to ${host} (${ipaddr.process(host).range()}), not an address IMAGE_URL may lead to`);
            throw refused;
          }
        },
      ],
    },
  });
  let contentType = '';
  let picsumId: string | undefined;
  let finalUrl = url.href;
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
