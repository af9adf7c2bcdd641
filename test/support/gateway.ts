// A stand-in OpenFaaS gateway on 127.0.0.1, for the cold-start tool's and the
// deploy tests. It answers the REST calls faas-cli and the tool make, with
// the real shapes, and runs the function for real: each replica is a
// `node dist/index.js` process (startFunction), scale to 0 stops them, and a
// call to /function/<name>/ at zero starts one and holds the request until it
// listens, as the gateway with scale from zero does.
//
// `ce: true` is OpenFaaS CE, whose provider is faas-netes: deploys and
// updates are checked by its rules (./faas-netes-ce.ts: the scaling labels,
// public images only) with its status codes and messages, and a scale to 0
// replicas is a 400. Without it, the gateway is Standard/Pro: the labels are
// accepted and the function may be scaled to zero.
//
//   GET  /system/function/<name>[?namespace=]        {name, replicas, availableReplicas, ...}
//        (replicas/availableReplicas omitted when 0: faas-provider marks them omitempty)
//   POST /system/functions                           deploy: 202, or 400 with faas-netes' message
//   PUT  /system/functions                           update: 202, 404 when not deployed, 400...
//   POST /system/scale-function/<name>[?namespace=]  {"serviceName","replicas"} -> 202
//   ANY  /function/<name>[.<namespace>][/path]        proxied, prefix stripped like of-watchdog
//
// It holds one function, `functionName`. A deploy is validated and recorded,
// and sets the replicas (com.openfaas.scale.min, else 1); the processes keep
// the environment the test gave (its IMAGE_DIR is the test's folder, as the
// volume patch maps the claim), so a deploy does not restart them.
import http from 'node:http';
import type net from 'node:net';
import { startFunction, type FunctionProcess, type StartOptions } from './fn.ts';
import { annotationError, isAnonymous, validateDeployRequest, MAX_REPLICAS, type FunctionDeployment } from './faas-netes-ce.ts';

export interface GatewayOptions {
  /** Environment of every function process (IMAGE_DIR, IMAGE_URL...). */
  env: Record<string, string>;
  functionName?: string;
  namespace?: string;
  user?: string;
  password?: string;
  /** Replicas at start (default 1: a deployed function). */
  replicas?: number;
  /** OpenFaaS CE (faas-netes' rules) rather than Standard/Pro. */
  ce?: boolean;
  /** Whether the function is deployed at start (default true). */
  deployed?: boolean;
  /** Where a registry's host:port resolves from inside the cluster (k3d adds its registry to CoreDNS). */
  resolveRegistry?: (registry: string) => string;
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
  /** The function as last deployed or updated (the request body), or undefined when not deployed. */
  deployment: FunctionDeployment | undefined;
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
  const ce = options.ce === true;
  let desired = options.deployed === false ? 0 : (options.replicas ?? 1);
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
    deployment: options.deployed === false ? undefined : { service: name, image: `ttl.sh/${name}:latest`, namespace },
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

  /** Go's http.Error: the message and a newline, as plain text. */
  const goError = (res: http.ServerResponse, status: number, message: string): void => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(`${message}\n`);
  };

  const minReplicas = (request: FunctionDeployment): number => {
    // pkg/handlers/deploy.go, getMinReplicaCount: a whole number above 0, else 1.
    const min = Number(request.labels?.['com.openfaas.scale.min']);
    return Number.isInteger(min) && min > 0 ? min : 1;
  };

  /**
   * faas-netes pkg/handlers/deploy.go (POST) and update.go (PUT), in their
   * order: parse, validate, namespace, then (deploy) the public-image check
   * and create, or (update) find the Deployment, the public-image check, update.
   */
  const deployOrUpdate = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const update = req.method === 'PUT';
    let request: FunctionDeployment;
    try {
      request = JSON.parse(await readBody(req)) as FunctionDeployment;
      if (!request || typeof request !== 'object' || Array.isArray(request)) throw new Error('expected a JSON object');
    } catch (error) {
      goError(res, 400, `${update ? 'unable to unmarshal request' : 'failed to unmarshal request'}: ${(error as Error).message}`);
      return;
    }
    const invalid = validateDeployRequest(request, ce);
    if (invalid) {
      goError(res, 400, `validation failed: ${invalid}`);
      return;
    }
    const ns = request.namespace || namespace;
    if (ns !== namespace) {
      goError(res, 400, `namespace must be: ${namespace}`);
      return;
    }
    if (request.service !== name) {
      goError(res, 501, `the stand-in gateway holds one function, ${name}`);
      return;
    }
    const badAnnotation = ce ? annotationError(request.annotations) : undefined;
    if (update) {
      if (badAnnotation) {
        goError(res, 400, badAnnotation);
        return;
      }
      if (!state.deployment) {
        goError(res, 404, `unable update Deployment: ${name}.${ns}, error: deployments.apps "${name}" not found`);
        return;
      }
      if (ce && (await isAnonymous(request.image!, options.resolveRegistry))) {
        // update.go: updateDeploymentSpec returns (400, err), but the handler
        // writes an answer only for a NotFound error; for any other it logs
        // and returns, so Go's server answers 200 with an empty body and the
        // Deployment keeps its old image.
        res.writeHead(200).end();
        return;
      }
    } else {
      if (ce) {
        const notPublic = await isAnonymous(request.image!, options.resolveRegistry);
        if (notPublic) {
          goError(res, 400, notPublic);
          return;
        }
      }
      if (badAnnotation) {
        goError(res, 400, `failed create Deployment spec: ${badAnnotation}`);
        return;
      }
      // MaxFunctions (15) cannot be reached with one function; not ported.
      if (state.deployment) {
        goError(res, 500, `unable create Deployment: deployments.apps "${name}" already exists`);
        return;
      }
    }
    state.deployment = request;
    // deploy.go sets the replicas from com.openfaas.scale.min (else 1); update.go only when the label is there.
    if (!update || request.labels?.['com.openfaas.scale.min'] !== undefined) desired = minReplicas(request);
    void reconcile().catch(() => {});
    res.writeHead(202).end();
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const invoke = /^\/function\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (invoke) {
      if (!sameFunction(invoke[1]!, new URLSearchParams()) || !state.deployment) {
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
    if (url.pathname === '/system/functions' && (req.method === 'POST' || req.method === 'PUT')) {
      await deployOrUpdate(req, res);
      return;
    }
    const status = /^\/system\/function\/([^/]+)$/.exec(url.pathname);
    if (status && req.method === 'GET') {
      if (!sameFunction(status[1]!, url.searchParams) || !state.deployment) {
        res.writeHead(404).end();
        return;
      }
      const available = ready().length;
      json(res, 200, {
        name,
        image: state.deployment.image,
        namespace,
        invocationCount: 0,
        ...(desired ? { replicas: desired } : {}),
        ...(available ? { availableReplicas: available } : {}),
        labels: { faas_function: name, ...state.deployment.labels },
      });
      return;
    }
    const scale = /^\/system\/scale-function\/([^/]+)$/.exec(url.pathname);
    if (scale && req.method === 'POST') {
      // faas-netes pkg/handlers/replica_updater.go; replicas is a uint64, so a
      // negative or fractional count fails to parse, and a missing one is 0.
      let body: { serviceName?: string; replicas?: number };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
        if (body.replicas !== undefined && (!Number.isInteger(body.replicas) || body.replicas < 0)) throw new Error('not a uint64');
      } catch {
        res.writeHead(400).end('Cannot parse request. Please pass valid JSON.');
        return;
      }
      const replicas = body.replicas ?? 0;
      if (ce && replicas === 0) {
        goError(res, 400, 'replicas cannot be set to 0 in OpenFaaS CE');
        return;
      }
      if (!sameFunction(scale[1]!, url.searchParams) || !state.deployment || (body.serviceName !== undefined && body.serviceName !== name)) {
        res.writeHead(500).end(`Unable to lookup function deployment ${scale[1]}`);
        return;
      }
      state.scaleRequests.push(body);
      desired = ce ? Math.min(replicas, MAX_REPLICAS) : replicas;
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
