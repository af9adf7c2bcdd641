// A stand-in OpenFaaS gateway on 127.0.0.1 for the cold-start tool's tests. It
// answers the REST calls the tool makes, with the real shapes, and runs the
// function for real: each replica is a `node dist/index.js` process
// (startFunction), scale to 0 stops them, and a call to /function/<name>/ at
// zero starts one and holds the request until it listens, as the gateway with
// scale from zero does. `ce: true` behaves like OpenFaaS CE: a scale to 0
// is accepted and leaves 1 replica.
//
//   GET  /system/function/<name>[?namespace=]        {name, replicas, availableReplicas, ...}
//        (replicas/availableReplicas omitted when 0: faas-provider marks them omitempty)
//   POST /system/scale-function/<name>[?namespace=]  {"serviceName","replicas"} -> 202
//   ANY  /function/<name>[.<namespace>][/path]        proxied, prefix stripped like of-watchdog
import http from 'node:http';
import type net from 'node:net';
import { startFunction, type FunctionProcess, type StartOptions } from './fn.ts';

export interface GatewayOptions {
  /** Environment of every function process (IMAGE_DIR, IMAGE_URL...). */
  env: Record<string, string>;
  functionName?: string;
  namespace?: string;
  user?: string;
  password?: string;
  /** Replicas at start (default 1: a deployed function). */
  replicas?: number;
  /** Behave like OpenFaaS CE: scaling to 0 leaves 1 replica. */
  ce?: boolean;
  start?: StartOptions;
}

interface Replica {
  fn: FunctionProcess;
  stopping: boolean;
}

export interface StandInGateway {
  url: string;
  user: string;
  password: string;
  functionName: string;
  /** Function processes started so far (each one a real cold start). */
  starts: number;
  /** Function processes stopped by a scale-down. */
  stops: number;
  /** Requests held while the function scaled from zero. */
  heldRequests: number;
  /** Bodies of every accepted POST /system/scale-function. */
  scaleRequests: Array<Record<string, unknown>>;
  /** Requests to /system/* refused with 401. */
  unauthorized: number;
  desiredReplicas(): number;
  availableReplicas(): number;
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<StandInGateway> {
  const name = options.functionName ?? 'todo-app';
  const namespace = options.namespace ?? 'openfaas-fn';
  const user = options.user ?? 'admin';
  const password = options.password ?? 'stand-in-password';
  const expectedAuth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  let desired = options.replicas ?? 1;
  const replicas: Replica[] = [];
  let starting: Promise<void> | undefined;
  let roundRobin = 0;
  const sockets = new Set<net.Socket>();
  let closed = false;

  const ready = (): Replica[] => replicas.filter((r) => !r.stopping);

  const state: StandInGateway = {
    url: '',
    user,
    password,
    functionName: name,
    starts: 0,
    stops: 0,
    heldRequests: 0,
    scaleRequests: [],
    unauthorized: 0,
    desiredReplicas: () => desired,
    availableReplicas: () => ready().length,
    close: async () => {
      if (closed) return;
      closed = true;
      desired = 0;
      await starting?.catch(() => {});
      await Promise.all(replicas.map((r) => r.fn.kill('SIGKILL')));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  // The Deployment controller: bring the running processes to the desired count.
  const reconcile = (): Promise<void> => {
    if (starting) return starting.then(reconcile);
    const live = ready();
    if (live.length > desired) {
      for (const replica of live.slice(desired)) {
        // A terminating pod stops counting as available at once; Kubernetes sends SIGTERM.
        replica.stopping = true;
        state.stops++;
        void replica.fn.kill('SIGTERM').then(() => replicas.splice(replicas.indexOf(replica), 1));
      }
      return Promise.resolve();
    }
    if (live.length < desired) {
      starting = (async () => {
        while (ready().length < desired) {
          state.starts++;
          const fn = await startFunction(options.env, options.start);
          replicas.push({ fn, stopping: false });
        }
      })().finally(() => (starting = undefined));
      return starting;
    }
    return Promise.resolve();
  };

  const sameFunction = (raw: string, query: URLSearchParams): boolean => {
    const [fnName, fnNamespace] = raw.split('.');
    const ns = fnNamespace ?? query.get('namespace') ?? namespace;
    return fnName === name && ns === namespace;
  };

  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  };

  const readBody = (req: http.IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => resolve(body));
      req.on('error', reject);
    });

  const proxy = async (req: http.IncomingMessage, res: http.ServerResponse, rest: string): Promise<void> => {
    if (ready().length === 0) {
      // Scale from zero: the gateway sets 1 replica and holds the request until it is ready.
      state.heldRequests++;
      if (desired === 0) desired = 1;
      await reconcile();
    }
    const live = ready();
    const target = live[roundRobin++ % live.length];
    if (!target) {
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end('no replica available');
      return;
    }
    const headers = { ...req.headers, host: `127.0.0.1:${target.fn.port}` };
    const upstream = http.request({ host: '127.0.0.1', port: target.fn.port, method: req.method, path: rest, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`upstream error: ${error.message}`);
    });
    req.pipe(upstream);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const invoke = /^\/function\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (invoke) {
      if (!sameFunction(invoke[1]!, new URLSearchParams())) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`error finding function ${invoke[1]}: not found`);
        return;
      }
      await proxy(req, res, `${invoke[2] || '/'}${url.search}`);
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200).end('OK');
      return;
    }
    if (!url.pathname.startsWith('/system/')) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== expectedAuth) {
      state.unauthorized++;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="Restricted"', 'Content-Type': 'text/plain' }).end('invalid credentials\n');
      return;
    }
    const status = /^\/system\/function\/([^/]+)$/.exec(url.pathname);
    if (status && req.method === 'GET') {
      if (!sameFunction(status[1]!, url.searchParams)) {
        res.writeHead(404).end();
        return;
      }
      const available = ready().length;
      json(res, 200, {
        name,
        image: `ttl.sh/${name}:latest`,
        namespace,
        invocationCount: 0,
        ...(desired ? { replicas: desired } : {}),
        ...(available ? { availableReplicas: available } : {}),
        labels: { faas_function: name },
      });
      return;
    }
    const scale = /^\/system\/scale-function\/([^/]+)$/.exec(url.pathname);
    if (scale && req.method === 'POST') {
      let body: { serviceName?: string; replicas?: number };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch {
        res.writeHead(400).end('Cannot parse request. Please pass valid JSON.');
        return;
      }
      if (!sameFunction(scale[1]!, url.searchParams) || (body.serviceName !== undefined && body.serviceName !== name)) {
        res.writeHead(404).end(`Unable to lookup function deployment ${scale[1]}`);
        return;
      }
      if (typeof body.replicas !== 'number' || body.replicas < 0) {
        res.writeHead(400).end('replicas must be a number, 0 or more');
        return;
      }
      state.scaleRequests.push(body);
      desired = options.ce && body.replicas === 0 ? 1 : body.replicas;
      void reconcile().catch(() => {});
      res.writeHead(202).end();
      return;
    }
    res.writeHead(405).end();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  await reconcile();
  return state;
}
