// A stand-in OpenFaaS gateway and provider on 127.0.0.1, for the cold-start
// tool's and the deploy tests. It answers the REST calls faas-cli and the tool
// make, with the real shapes, and runs the function for real: each replica is
// a `node dist/index.js` process (startFunction), a scale-down stops them, and
// a call to /function/<name>/ at zero starts one and holds the request until it
// is available, as the gateway with scale from zero does.
//
// Two layers, each rule beside the file it is ported from:
// - the gateway (openfaas/faas 0.27.14, gateway/): basic auth on /system/*, the
//   CE range on a scale request (scaling/ranges.go), and scale from zero with
//   its 250 ms cache of replica counts (scaling/function_scaler.go,
//   handlers/scaling.go, main.go). `gateway: false` leaves it out: the
//   provider called directly.
// - the provider: with `ce: true` faas-netes CE 0.18.17 (./faas-netes-ce.ts for
//   its deploy rules; pkg/handlers/replica_updater.go; pkg/handlers/informers.go,
//   which puts a Deployment scaled to 0 back to 1), else Standard/Pro, which
//   may scale to zero. Both proxy as faas-provider's proxy/proxy.go does.
//   `readiness: false` is a provider without readiness, as faasd: a replica
//   counts as available as soon as its process is spawned.
//
//   GET  /system/function/<name>[?namespace=]        {name, replicas, availableReplicas, ...}
//        (replicas/availableReplicas omitted when 0: faas-provider marks them omitempty)
//   POST /system/functions                           deploy: 202, or 400 with faas-netes' message
//   PUT  /system/functions                           update: 202, 404 when not deployed, 400...
//   POST /system/scale-function/<name>[?namespace=]  {"serviceName","replicas"} -> 202
//   ANY  /function/<name>[.<namespace>][/path]        proxied, prefix stripped like of-watchdog
//   PATCH /apis/apps/v1/namespaces/<ns>/deployments/<name>/scale  {"spec":{"replicas":n}}:
//        the Kubernetes API, for `kubectl scale` (a test's kubectl calls it)
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
  /** OpenFaaS CE (faas-netes' rules, the gateway's CE range) rather than Standard/Pro. */
  ce?: boolean;
  /** The gateway's rules in front of the provider (default true); false: the provider called directly. */
  gateway?: boolean;
  /** Whether a replica counts as available only once it listens (default true, as faas-netes' probes); false: as faasd. */
  readiness?: boolean;
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
  /** Requests held while the function had no available replica. */
  heldRequests: number;
  /** Requests the gateway proxied on a cached replica count while no replica was available: the provider answered 503. */
  cachedMisses: number;
  /** Bodies of every accepted POST /system/scale-function, as the provider got them. */
  scaleRequests: Array<Record<string, unknown>>;
  /** Requests to /system/* refused with 401. */
  unauthorized: number;
  /** The function as last deployed or updated (the request body), or undefined when not deployed. */
  deployment: FunctionDeployment | undefined;
  desiredReplicas(): number;
  availableReplicas(): number;
  close(): Promise<void>;
}

// gateway/main.go: scalingConfig.
/** `CacheExpiry: time.Millisecond * 250`: how long the gateway trusts a replica count it read. */
export const GATEWAY_CACHE_EXPIRY_MS = 250;
/** `FunctionPollInterval: time.Millisecond * 100`: how often it asks while it holds a request. */
const FUNCTION_POLL_INTERVAL_MS = 100;
/** `MaxPollCount: uint(1000)`. */
const MAX_POLL_COUNT = 1000;
/** scaling/ranges.go, DefaultMaxReplicas. */
const GATEWAY_MAX_REPLICAS = 5;
/**
 * faas-netes' informer sees a Deployment's change this long after it (a watch event);
 * seen on a real single-node cluster: back to 1 within about 150 ms (/work/shared/design.md).
 */
const INFORMER_DELAY_MS = 150;

export async function startGateway(options: GatewayOptions): Promise<StandInGateway> {
  const name = options.functionName ?? 'todo-app';
  const namespace = options.namespace ?? 'openfaas-fn';
  const user = options.user ?? 'admin';
  const password = options.password ?? 'stand-in-password';
  const expectedAuth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const ce = options.ce === true;
  const withGateway = options.gateway !== false;
  const readiness = options.readiness !== false;
  let desired = options.deployed === false ? 0 : (options.replicas ?? 1);
  const replicas: Replica[] = [];
  let starting: Promise<void> | undefined;
  let roundRobin = 0;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  /** The pods that are endpoints: not terminating, and (with readiness) listening. */
  const ready = (): Replica[] => replicas.filter((r) => !r.stopping);

  const state: StandInGateway = {
    url: '',
    user,
    password,
    functionName: name,
    starts: 0,
    stops: 0,
    heldRequests: 0,
    cachedMisses: 0,
    scaleRequests: [],
    unauthorized: 0,
    deployment: options.deployed === false ? undefined : { service: name, image: `ttl.sh/${name}:latest`, namespace },
    desiredReplicas: () => desired,
    availableReplicas: () => ready().length,
    close: async () => {
      if (closed) return;
      closed = true;
      desired = 0;
      for (const timer of timers) clearTimeout(timer);
      await starting?.catch(() => {});
      await Promise.all(replicas.map((r) => r.fn.kill('SIGKILL')));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  // The Deployment controller: bring the running processes to the desired count.
  const reconcile = (): Promise<void> => {
    if (closed) return Promise.resolve();
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
        while (ready().length < desired && !closed) {
          state.starts++;
          // Without readiness the pod is an endpoint as soon as its process runs, listening or not.
          const fn = await startFunction(options.env, { ...options.start, waitReady: readiness });
          replicas.push({ fn, stopping: false });
        }
      })().finally(() => (starting = undefined));
      return starting;
    }
    return Promise.resolve();
  };

  /** Sets the Deployment's replicas, as the Kubernetes API would, and lets the controllers react. */
  const setReplicas = (count: number): void => {
    desired = count;
    void reconcile().catch(() => {});
    if (ce) {
      // faas-netes pkg/handlers/informers.go, applyValidation (on the informer's update event):
      // a function's Deployment at 0 replicas is set to 1, above MaxReplicas to MaxReplicas.
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (desired === 0 && state.deployment) setReplicas(1);
        else if (desired > MAX_REPLICAS) setReplicas(MAX_REPLICAS);
      }, INFORMER_DELAY_MS);
      timers.add(timer);
    }
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

  /** Go's http.Error: the message and a newline, as plain text. */
  const goError = (res: http.ServerResponse, status: number, message: string): void => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(`${message}\n`);
  };

  /** faas-provider proxy/proxy.go, proxyRequest: to one endpoint of the function, or its error. */
  const providerProxy = (req: http.IncomingMessage, res: http.ServerResponse, rest: string): void => {
    const live = ready();
    const target = live[roundRobin++ % Math.max(live.length, 1)];
    if (!target) {
      goError(res, 503, `No endpoints available for: ${name}.`);
      return;
    }
    const headers = { ...req.headers, host: `127.0.0.1:${target.fn.port}` };
    const upstream = http.request({ host: '127.0.0.1', port: target.fn.port, method: req.method, path: rest, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) goError(res, 500, `Can't reach service for: ${name}.`);
      else res.destroy();
    });
    req.pipe(upstream);
  };

  /** The provider's GET /system/function: what the gateway's ExternalServiceQuery.GetReplicas reads. */
  const query = (): { replicas: number; available: number } => ({ replicas: desired, available: ready().length });
  let cached: { at: number; available: number } | undefined;

  /**
   * gateway scaling/function_scaler.go, Scale, as handlers/scaling.go calls it before proxying:
   * a fresh cached count with replicas available goes straight through; else the live count;
   * at 0 desired replicas it sets the minimum (1) and polls until one is available.
   */
  const scaleFromZero = async (): Promise<void> => {
    if (cached && Date.now() - cached.at < GATEWAY_CACHE_EXPIRY_MS && cached.available > 0) {
      if (ready().length === 0) state.cachedMisses++;
      return;
    }
    let live = query();
    if (live.available > 0) return;
    cached = { at: Date.now(), available: live.available };
    state.heldRequests++;
    if (live.replicas === 0) setReplicas(1);
    for (let i = 0; i < MAX_POLL_COUNT && !closed; i++) {
      live = query();
      cached = { at: Date.now(), available: live.available };
      if (live.available > 0) return;
      await new Promise((resolve) => setTimeout(resolve, FUNCTION_POLL_INTERVAL_MS));
    }
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
    if (!update || request.labels?.['com.openfaas.scale.min'] !== undefined) setReplicas(minReplicas(request));
    res.writeHead(202).end();
  };

  const minReplicas = (request: FunctionDeployment): number => {
    // pkg/handlers/deploy.go, getMinReplicaCount: a whole number above 0, else 1.
    const min = Number(request.labels?.['com.openfaas.scale.min']);
    return Number.isInteger(min) && min > 0 ? min : 1;
  };

  /** POST /system/scale-function/<name>: the gateway's range (CE), then the provider. */
  const scale = async (req: http.IncomingMessage, res: http.ServerResponse, raw: string, url: URL): Promise<void> => {
    let body: { serviceName?: string; replicas?: number; namespace?: string };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
      // replicas is a uint64 in faas-provider's ScaleServiceRequest: a negative or fractional count does not parse.
      if (body.replicas !== undefined && (!Number.isInteger(body.replicas) || body.replicas < 0)) throw new Error('not a uint64');
    } catch {
      if (withGateway && ce) goError(res, 400, 'Error unmarshalling request body');
      else res.writeHead(400).end('Cannot parse request. Please pass valid JSON.');
      return;
    }
    if (withGateway && ce) {
      // gateway scaling/ranges.go, MakeHorizontalScalingHandler: replicas below 1 become 1, above
      // DefaultMaxReplicas become that, before the provider sees the request.
      body = { ...body, replicas: Math.min(Math.max(body.replicas ?? 0, 1), GATEWAY_MAX_REPLICAS) };
    }
    const replicas = body.replicas ?? 0;
    // faas-netes pkg/handlers/replica_updater.go, from here on.
    if (ce && replicas === 0) {
      goError(res, 400, 'replicas cannot be set to 0 in OpenFaaS CE');
      return;
    }
    if (!sameFunction(raw, url.searchParams) || !state.deployment || (body.serviceName !== undefined && body.serviceName !== name)) {
      res.writeHead(500).end(`Unable to lookup function deployment ${raw}`);
      return;
    }
    state.scaleRequests.push(body);
    setReplicas(ce ? Math.min(replicas, MAX_REPLICAS) : replicas);
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
      if (withGateway) await scaleFromZero();
      providerProxy(req, res, `${invoke[2] || '/'}${url.search}`);
      return;
    }
    const kubectlScale = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/.exec(url.pathname);
    if (kubectlScale && (req.method === 'PATCH' || req.method === 'PUT')) {
      if (kubectlScale[1] !== namespace || kubectlScale[2] !== name || !state.deployment) {
        json(res, 404, { kind: 'Status', status: 'Failure', reason: 'NotFound', message: `deployments.apps "${kubectlScale[2]}" not found`, code: 404 });
        return;
      }
      const count = (JSON.parse(await readBody(req)) as { spec?: { replicas?: number } }).spec?.replicas ?? desired;
      setReplicas(count);
      json(res, 200, { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name, namespace }, spec: { replicas: count } });
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
      const { replicas: count, available } = query();
      json(res, 200, {
        name,
        image: state.deployment.image,
        namespace,
        invocationCount: 0,
        ...(count ? { replicas: count } : {}),
        ...(available ? { availableReplicas: available } : {}),
        labels: { faas_function: name, ...state.deployment.labels },
      });
      return;
    }
    const scaleCall = /^\/system\/scale-function\/([^/]+)$/.exec(url.pathname);
    if (scaleCall) {
      if (req.method !== 'POST') {
        // ranges.go's own check; the provider's route takes POST only.
        if (withGateway && ce) goError(res, 405, 'Only POST is allowed');
        else res.writeHead(405).end();
        return;
      }
      await scale(req, res, scaleCall[1]!, url);
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
