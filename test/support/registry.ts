// A stand-in container registry on 127.0.0.1, speaking the part of the
// Docker Registry HTTP API V2 that an anonymous HEAD of a manifest uses
// (what faas-netes CE does before a deploy): GET /v2/, a Bearer token for
// anonymous pulls when `private` asks for auth, and HEAD/GET of
// /v2/<repository>/manifests/<reference>. A public registry answers 200 with
// no auth, like k3d's registry:2; a private one challenges, hands anonymous
// callers a token, and refuses them the manifest, like a private package on
// ghcr.io.
import http from 'node:http';
import type net from 'node:net';

export interface RegistryOptions {
  /** Images it holds, as "repository:tag". */
  images: string[];
  /** Ask for a Bearer token and refuse anonymous pulls. */
  private?: boolean;
}

export interface StandInRegistry {
  /** host:port on 127.0.0.1. */
  address: string;
  /** Every request, as "METHOD path". */
  seen: string[];
  close(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions): Promise<StandInRegistry> {
  const seen: string[] = [];
  const held = new Set(options.images);
  const sockets = new Set<net.Socket>();
  let address = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    seen.push(`${req.method} ${url.pathname}`);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0', ...headers }).end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    if (url.pathname === '/token') {
      json(200, { token: 'anonymous' });
      return;
    }
    const authorized = !options.private || req.headers.authorization === 'Bearer signed-in';
    if (!authorized) {
      const challenge = `Bearer realm="http://${address}/token",service="stand-in"`;
      json(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'WWW-Authenticate': challenge });
      return;
    }
    if (url.pathname === '/v2/') {
      json(200, {});
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest && (req.method === 'HEAD' || req.method === 'GET')) {
      if (held.has(`${manifest[1]}:${manifest[2]}`)) json(200, {}, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
      else json(404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      return;
    }
    json(404, { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    seen,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
