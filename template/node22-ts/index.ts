// The HTTP wrapper of the node22-ts template: generic, it knows nothing of the
// function it serves. It keeps the OpenFaaS node contract,
// handle(event, context) with context.status(n).headers({...}).succeed(body),
// and adds two optional lifecycle hooks a function may export: init() before
// the first request and close() on SIGTERM.
import http from 'node:http';

export interface FunctionEvent {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: Buffer | undefined;
}

export interface FunctionContext {
  status(code: number): FunctionContext;
  headers(values: Record<string, string | number>): FunctionContext;
  succeed(body?: string | Buffer): void;
  fail(error: unknown): void;
}

export interface FunctionModule {
  handle(event: FunctionEvent, context: FunctionContext): unknown;
  init?(): Promise<void> | void;
  close?(): Promise<void> | void;
}

const MAX_BODY_BYTES = 1024 * 1024;
const CLOSE_BOUND_MS = 25_000;

function fatal(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function parsePort(name: string, raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    fatal(`${name}: must be a whole number from 1 to 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/**
 * Under of-watchdog the function must listen where the watchdog forwards,
 * its upstream_url; PORT may belong to the watchdog itself (Knative sets
 * PORT=8080, the watchdog's own port, in every container). Elsewhere PORT, then 3000.
 */
function listenPort(env: NodeJS.ProcessEnv): { name: string; port: number } {
  const upstream = env.upstream_url;
  if (upstream !== undefined && upstream !== '') {
    let url: URL | undefined;
    try {
      url = new URL(upstream);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'http:' || url.hostname === '') {
      fatal(`upstream_url: must be a URL such as http://127.0.0.1:3000, got ${JSON.stringify(upstream)}`);
    }
    return { name: 'upstream_url', port: url.port === '' ? 80 : parsePort('upstream_url', url.port) };
  }
  const port = env.PORT;
  return { name: 'PORT', port: port === undefined || port === '' ? 3000 : parsePort('PORT', port) };
}

/**
 * of-watchdog passes SIGTERM on at once but goes on forwarding requests for
 * its healthcheck_interval while the platform takes the pod out of service:
 * keep answering for that long (a Go duration such as "5s").
 */
function drainMs(raw: string | undefined): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(raw ?? '');
  if (!match) return 0;
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

class Context implements FunctionContext {
  private code = 200;
  private values: Record<string, string | number> = {};
  private done = false;

  constructor(private readonly res: http.ServerResponse) {}

  status(code: number): this {
    this.code = code;
    return this;
  }

  headers(values: Record<string, string | number>): this {
    this.values = values;
    return this;
  }

  succeed(body?: string | Buffer): void {
    if (this.done) return;
    this.done = true;
    const payload = body === undefined ? '' : body;
    if (this.values['Content-Length'] === undefined && this.values['content-length'] === undefined) {
      this.values['Content-Length'] = Buffer.byteLength(payload);
    }
    // Node drops the body of a HEAD answer itself and keeps Content-Length.
    this.res.writeHead(this.code, this.values);
    this.res.end(payload);
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    process.stderr.write(`${JSON.stringify({ level: 50, time: Date.now(), msg: 'handler failed', err: String(error) })}\n`);
    if (this.res.headersSent) {
      this.res.destroy();
      return;
    }
    this.res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
    this.res.end('Internal Server Error\n');
  }
}

function eventOf(req: http.IncomingMessage, body: Buffer | undefined): FunctionEvent {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const path = (mark === -1 ? url : url.slice(0, mark)) || '/';
  const query: Record<string, string> = {};
  if (mark !== -1) {
    for (const [key, value] of new URLSearchParams(url.slice(mark + 1))) query[key] = value;
  }
  return { method: req.method ?? 'GET', path, query, headers: req.headers, body };
}

function hasBody(req: http.IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        // Destroying the request would cut the socket before the 413 is written: stop keeping
        // the body and let it drain until the answer (Connection: close) ends the connection.
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const { name, port } = listenPort(process.env);
  const drain = drainMs(process.env.healthcheck_interval);
  const handlerUrl = new URL('./function/handler.js', import.meta.url);
  let fn: FunctionModule;
  try {
    fn = (await import(handlerUrl.href)) as FunctionModule;
    await fn.init?.();
  } catch (error) {
    fatal(error instanceof Error ? error.message : String(error));
  }

  const run = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | undefined): void => {
    const context = new Context(res);
    try {
      const result = fn.handle(eventOf(req, body), context);
      if (result instanceof Promise) result.catch((error: unknown) => context.fail(error));
    } catch (error) {
      context.fail(error);
    }
  };

  const server = http.createServer((req, res) => {
    // A GET has no body: answer without waiting for the request stream to end.
    if (!hasBody(req)) {
      run(req, res, undefined);
      return;
    }
    readBody(req).then(
      (body) => run(req, res, body),
      () => {
        if (!res.headersSent) res.writeHead(413, { Connection: 'close' }).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;

  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    const bound = setTimeout(() => process.exit(0), CLOSE_BOUND_MS);
    bound.unref();
    // The function finishes its own work (a refresh in flight) while the server
    // still answers through the drain window; then no new connections are taken.
    const finished = Promise.resolve(fn.close?.());
    const drained = new Promise((resolve) => setTimeout(resolve, signal === 'SIGTERM' ? drain : 0));
    void drained.then(() => {
      server.close();
      server.closeIdleConnections();
    });
    Promise.allSettled([finished, drained]).finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  server.on('error', (error) => fatal(`${name}: cannot listen on port ${port}: ${error.message}`));
  server.listen(port);
}

void main();
