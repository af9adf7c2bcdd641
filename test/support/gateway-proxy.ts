// A path-prefix proxy like the OpenFaaS gateway plus of-watchdog: the browser
// asks for /function/<name>/..., the function sees the rest of the path ("/"
// for both /function/<name>/ and /function/<name>). Anything outside the
// prefix is a 404 from the proxy itself, as the gateway answers.
import http from 'node:http';
import type net from 'node:net';

export interface GatewayProxy {
  /** The proxy's origin, e.g. http://127.0.0.1:31234 */
  origin: string;
  /** origin + prefix + "/": the URL a user opens. */
  url: string;
  prefix: string;
  /** Every path the proxy was asked for, in order, with what the upstream saw. */
  seen: Array<{ method: string; path: string; forwarded: string | null; status: number }>;
  close(): Promise<void>;
}

/** Strips `prefix` from the request path; null when the path is not under it. */
export function stripPrefix(url: string, prefix: string): string | null {
  const mark = url.search(/[?#]/);
  const path = mark === -1 ? url : url.slice(0, mark);
  const rest = mark === -1 ? '' : url.slice(mark);
  if (path !== prefix && !path.startsWith(`${prefix}/`)) return null;
  return (path.slice(prefix.length) || '/') + rest;
}

export async function startGatewayProxy(upstream: string, name = 'todo-app'): Promise<GatewayProxy> {
  const prefix = `/function/${name}`;
  const target = new URL(upstream);
  const sockets = new Set<net.Socket>();
  const seen: GatewayProxy['seen'] = [];

  const server = http.createServer((req, res) => {
    const forwarded = stripPrefix(req.url ?? '/', prefix);
    const record = { method: req.method ?? 'GET', path: req.url ?? '/', forwarded, status: 0 };
    seen.push(record);
    if (forwarded === null) {
      record.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
      return;
    }
    const headers = { ...req.headers, host: target.host, 'x-forwarded-host': req.headers.host ?? '', 'x-forwarded-uri': req.url ?? '/' };
    const upstreamReq = http.request(
      { hostname: target.hostname, port: target.port, method: req.method, path: forwarded, headers },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? 502;
        res.writeHead(record.status, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', (error) => {
      record.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`upstream error: ${error.message}\n`);
    });
    req.pipe(upstreamReq);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    origin,
    url: `${origin}${prefix}/`,
    prefix,
    seen,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
