// What the deployment tests read: stack.yml, the manifests in k8s-volumes/
// (through a small kustomize of our own, so no kubectl is needed), the schema
// models, a Deployment shaped like the one faas-netes makes, to apply the
// OpenFaaS patch to, and the checks each target's manifests must pass, as
// functions that list problems, so a test can also run them on a broken copy.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { Service as KnativeService } from '@kubernetes-models/knative/serving.knative.dev/v1';
import { intOrDuration, readPlatform, shutdownPlan } from '../../template/node22-ts/watchdog.ts';
import { repoRoot } from './fn.ts';
import { parseDockerfile, parseEnv } from './deploy-dockerfile.ts';

export type Doc = Record<string, any>;

export interface StackFunction {
  lang: string;
  handler: string;
  image: string;
  environment: Record<string, string>;
  labels: Record<string, string>;
  requests?: Record<string, string>;
  limits?: Record<string, string>;
  readonly_root_filesystem?: boolean;
}

export interface Stack {
  version: string | number;
  provider: { name: string; gateway: string };
  functions: Record<string, StackFunction>;
}

export const volumesDir = path.join(repoRoot, 'k8s-volumes');

export function readYaml(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      return doc.toJS() as Doc | null;
    })
    .filter((doc): doc is Doc => doc !== null);
}

export function readStack(): Stack {
  return readYaml(path.join(repoRoot, 'stack.yml'))[0] as Stack;
}

const CLUSTER_SCOPED = new Set(['PersistentVolume', 'Namespace', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

export interface Kustomization {
  dir: string;
  resources: string[];
  namespace?: string;
  patches?: unknown[];
}

export function readKustomization(dir: string): Kustomization {
  const file = path.join(dir, 'kustomization.yaml');
  const doc = readYaml(file)[0] ?? {};
  return { dir, resources: doc.resources ?? [], namespace: doc.namespace, patches: doc.patches };
}

/** The documents `kubectl apply -k dir` sends, for the subset of kustomize used here. */
export function kustomize(dir: string): Doc[] {
  const k = readKustomization(dir);
  if (k.patches !== undefined) throw new Error(`${dir}: patches are not understood by this test's kustomize`);
  const docs: Doc[] = [];
  for (const resource of k.resources) {
    const target = path.resolve(dir, resource);
    if (!existsSync(target)) throw new Error(`${path.relative(repoRoot, dir)}/kustomization.yaml lists ${resource}, which does not exist`);
    if (statSync(target).isDirectory()) {
      if (!existsSync(path.join(target, 'kustomization.yaml'))) throw new Error(`${resource} is a folder without kustomization.yaml`);
      docs.push(...kustomize(target));
    } else {
      if (path.relative(dir, target).startsWith('..')) throw new Error(`${resource}: kustomize loads files only from inside ${dir}`);
      docs.push(...readYaml(target));
    }
  }
  if (k.namespace) {
    for (const doc of docs) if (!CLUSTER_SCOPED.has(doc.kind)) doc.metadata = { ...doc.metadata, namespace: k.namespace };
  }
  return docs;
}

/** The schema model of each kind the manifests hold. */
const MODELS: Record<string, new (doc: never) => { validate(): void }> = {
  'v1/PersistentVolume': PersistentVolume,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/Ingress': Ingress,
  'serving.knative.dev/v1/Service': KnativeService,
};

/** Builds the schema model for the document and validates it; throws on an invalid one. */
export function validate(doc: Doc): string {
  const id = `${doc.apiVersion}/${doc.kind}`;
  const Model = MODELS[id];
  if (Model === undefined) throw new Error(`no schema model for ${id} (${doc.metadata?.name}): add one to the test`);
  new Model(doc as never).validate();
  return id;
}

/**
 * The Deployment faas-netes creates for a stack.yml function, with the parts
 * the patch meets: the container named after the function, port 8080,
 * of-watchdog's probes and, for readonly_root_filesystem, the "temp" emptyDir
 * at /tmp (faas-netes, pkg/k8s/securityContext.go).
 */
export function faasNetesDeployment(name: string, fn: StackFunction): Doc {
  const readOnly = fn.readonly_root_filesystem === true;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'openfaas-fn', labels: { faas_function: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { faas_function: name } },
      template: {
        metadata: { name, labels: { faas_function: name } },
        spec: {
          containers: [
            {
              name,
              image: fn.image,
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              env: Object.entries(fn.environment).map(([k, v]) => ({ name: k, value: v })),
              readinessProbe: { httpGet: { path: '/_/health', port: 8080 } },
              livenessProbe: { httpGet: { path: '/_/health', port: 8080 } },
              securityContext: { readOnlyRootFilesystem: readOnly, allowPrivilegeEscalation: false },
              volumeMounts: readOnly ? [{ name: 'temp', mountPath: '/tmp' }] : [],
            },
          ],
          volumes: readOnly ? [{ name: 'temp', emptyDir: {} }] : [],
        },
      },
    },
  };
}

// Strategic merge keys of the lists the patch touches (k8s.io/api core/v1 tags).
const MERGE_KEYS: Record<string, string> = { containers: 'name', volumes: 'name', volumeMounts: 'mountPath', env: 'name', ports: 'containerPort' };

/** A strategic merge patch as kubectl applies it, for maps and the keyed lists above. */
export function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (!key || !Array.isArray(base)) return structuredClone(patch);
    const merged = base.map((item) => structuredClone(item) as Doc);
    for (const item of patch as Doc[]) {
      const at = merged.findIndex((m) => m[key] === item[key]);
      if (at === -1) merged.push(structuredClone(item));
      else merged[at] = strategicMerge(merged[at], item) as Doc;
    }
    return merged;
  }
  if (patch && typeof patch === 'object') {
    const out: Doc = base && typeof base === 'object' && !Array.isArray(base) ? structuredClone(base as Doc) : {};
    for (const [k, v] of Object.entries(patch as Doc)) out[k] = v === null ? undefined : strategicMerge(out[k], v, k);
    return out;
  }
  return patch;
}

/** Whether a volume mounted at mountPath holds the folder dir. */
export function mountCovers(mountPath: string, dir: string): boolean {
  const m = path.posix.normalize(mountPath).replace(/\/$/, '');
  const d = path.posix.normalize(dir).replace(/\/$/, '');
  return d === m || d.startsWith(`${m}/`);
}

/** The claim a pod spec mounts over dir: [volume, mount] of the container, or undefined. */
export function claimOver(podSpec: Doc, container: Doc, dir: string): { claimName: string; mountPath: string } | undefined {
  for (const mount of container.volumeMounts ?? []) {
    if (!mountCovers(mount.mountPath, dir)) continue;
    const volume = (podSpec.volumes ?? []).find((v: Doc) => v.name === mount.name);
    if (volume?.persistentVolumeClaim?.claimName && !mount.readOnly) {
      return { claimName: volume.persistentVolumeClaim.claimName, mountPath: mount.mountPath };
    }
  }
  return undefined;
}

/** Every kustomization a user applies, as folders under k8s-volumes/. */
export const TARGETS = ['openfaas', 'knative', 'kubernetes', 'cache', 'volume/local', 'volume/default-class', 'volume/shared'];

/** An RFC 7386 JSON merge patch, as `kubectl patch --type merge` applies it: maps merge, null deletes, the rest replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Doc = target && typeof target === 'object' && !Array.isArray(target) ? structuredClone(target as Doc) : {};
  for (const [key, value] of Object.entries(patch as Doc)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** What the image does at run time, from the final stage of the template's Dockerfile. */
export interface ImageFacts {
  env: Record<string, string>;
  workdir: string;
  /** of-watchdog's port: env `port`, default 8080 (config/config.go). */
  watchdogPort: number;
  healthcheckIntervalMs: number;
  writeTimeoutMs: number;
}

export function imageFacts(dockerfileText: string): ImageFacts {
  const final = parseDockerfile(dockerfileText).at(-1)!;
  const env: Record<string, string> = {};
  let workdir = '/';
  for (const { keyword, args } of final.instructions) {
    if (keyword === 'ENV') Object.assign(env, parseEnv(args));
    if (keyword === 'WORKDIR') workdir = path.posix.resolve(workdir, args);
  }
  // of-watchdog's defaults (config/config.go): timeouts 30 s; healthcheck_interval defaults to write_timeout.
  const writeTimeoutMs = intOrDuration(env.write_timeout, 30_000);
  return {
    env,
    workdir,
    watchdogPort: env.port ? Number(env.port) : 8080,
    healthcheckIntervalMs: intOrDuration(env.healthcheck_interval, writeTimeoutMs),
    writeTimeoutMs,
  };
}

/** The template's Dockerfile for a stack.yml function. */
export function readImageFacts(fn: StackFunction): ImageFacts {
  return imageFacts(readFileSync(path.join(repoRoot, 'template', fn.lang, 'Dockerfile'), 'utf8'));
}

/** How long the wrapper may take to exit after SIGTERM when no watchdog is in front (watchdog.ts shutdownPlan). */
export function wrapperCloseBoundMs(): number {
  const plan = shutdownPlan(readPlatform({}), 'SIGTERM');
  return plan.acceptMs + plan.finishMs;
}

export function envOf(container: Doc): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e: Doc) => [e.name, e.value])) as Record<string, string>;
}

/** Whether every pod that mounts the claim is sure to run on one node (a local volume with one node term). */
export function pinnedToOneNode(docs: Doc[], claim: Doc): boolean {
  return docs.some(
    (pv) =>
      pv.kind === 'PersistentVolume' &&
      (claim.spec.volumeName === undefined || claim.spec.volumeName === pv.metadata.name) &&
      pv.spec.storageClassName === claim.spec.storageClassName &&
      pv.spec.local !== undefined &&
      pv.spec.nodeAffinity?.required?.nodeSelectorTerms?.length === 1,
  );
}

/** Max replicas that fit the claim's access modes. */
export function maxReplicasFor(docs: Doc[], claim: Doc): number {
  const modes: string[] = claim.spec.accessModes;
  if (modes.includes('ReadWriteMany')) return Infinity;
  if (modes.includes('ReadWriteOncePod')) return 1;
  return pinnedToOneNode(docs, claim) ? Infinity : 1;
}

function onlyOne(docs: Doc[], kind: string, apiVersion: string | undefined, problems: string[]): Doc | undefined {
  const found = docs.filter((d) => d.kind === kind && (apiVersion === undefined || d.apiVersion === apiVersion));
  if (found.length !== 1) problems.push(`expected one ${kind}, found ${found.length}`);
  return found.length === 1 ? found[0] : undefined;
}

/** The port number a probe or Service names: a number, or the name of one of the container's ports. */
function portNumber(container: Doc, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports ?? []).find((p: Doc) => p.name === port)?.containerPort;
}

/** Problems shared by both pod-running targets: the image, the settings, the claim over IMAGE_DIR, /tmp. */
function checkPod(pod: Doc, container: Doc, claim: Doc | undefined, fn: StackFunction, problems: string[]): void {
  if (container.image !== fn.image) problems.push(`image ${container.image} is not stack.yml's ${fn.image}`);
  const env = envOf(container);
  for (const [name, value] of Object.entries(fn.environment)) {
    if (env[name] !== value) problems.push(`${name} is ${JSON.stringify(env[name])}, stack.yml has ${JSON.stringify(value)}`);
  }
  const over = claimOver(pod, container, fn.environment.IMAGE_DIR!);
  if (!over) problems.push(`no claim mounted (writable) over IMAGE_DIR ${fn.environment.IMAGE_DIR}`);
  else if (claim && over.claimName !== claim.metadata.name) problems.push(`the claim over IMAGE_DIR is ${over.claimName}, not ${claim.metadata.name}`);
  if (container.securityContext?.readOnlyRootFilesystem !== true) problems.push('the root file system is not read-only');
  const tmp = (container.volumeMounts ?? []).find((m: Doc) => m.mountPath === '/tmp');
  const tmpVolume = tmp && (pod.volumes ?? []).find((v: Doc) => v.name === tmp.name);
  if (!tmpVolume?.emptyDir) problems.push('no emptyDir at /tmp (of-watchdog\'s /tmp/.lock, Node\'s os.tmpdir())');
  if (container.securityContext?.runAsUser !== 12000) problems.push('runAsUser is not the image\'s UID 12000');
}

/**
 * The plain Kubernetes target: a Deployment running the image as built (its
 * CMD, of-watchdog), probed on the watchdog like faas-netes does, with the
 * claim over IMAGE_DIR; a Service and an Ingress that reach it.
 */
export function checkPlainTarget(docs: Doc[], fn: StackFunction, image: ImageFacts): string[] {
  const problems: string[] = [];
  const deployment = onlyOne(docs, 'Deployment', 'apps/v1', problems);
  const service = onlyOne(docs, 'Service', 'v1', problems);
  const ingress = onlyOne(docs, 'Ingress', 'networking.k8s.io/v1', problems);
  const claim = onlyOne(docs, 'PersistentVolumeClaim', 'v1', problems);
  if (!deployment) return problems;
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  if (pod.containers.length !== 1) problems.push('the pod has more than one container');
  checkPod(pod, container, claim, fn, problems);
  if (claim && claim.metadata.namespace !== deployment.metadata.namespace) problems.push('the claim is not in the Deployment\'s namespace');
  if (container.command !== undefined || container.args !== undefined) problems.push('command/args override the image\'s CMD (of-watchdog)');
  for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
    const probe = container[kind];
    const http = probe?.httpGet;
    const exec = probe?.exec?.command;
    // faas-netes' two probes (pkg/k8s/probes.go): GET /_/health on the watchdog's port, or `cat /tmp/.lock`.
    const onWatchdog = http
      ? http.path === '/_/health' && portNumber(container, http.port) === image.watchdogPort
      : JSON.stringify(exec) === JSON.stringify(['cat', '/tmp/.lock']);
    if (!onWatchdog) problems.push(`${kind} is not of-watchdog's: GET /_/health on port ${image.watchdogPort}, or cat /tmp/.lock`);
  }
  if (!(container.ports ?? []).some((p: Doc) => p.containerPort === image.watchdogPort)) problems.push(`no containerPort ${image.watchdogPort} (of-watchdog)`);
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  const needed = (image.healthcheckIntervalMs + image.writeTimeoutMs) / 1000;
  // Strictly above: at equal, SIGKILL lands just as of-watchdog's drain ends.
  if (grace <= needed) problems.push(`terminationGracePeriodSeconds ${grace} is not above of-watchdog's shutdown, healthcheck_interval + write_timeout = ${needed} s`);
  const podLabels: Record<string, string> = deployment.spec.template.metadata?.labels ?? {};
  if (service) {
    const selects = Object.entries(service.spec.selector ?? {}).every(([k, v]) => podLabels[k] === v);
    if (!selects || Object.keys(service.spec.selector ?? {}).length === 0) problems.push('the Service does not select the Deployment\'s pods');
    if (service.metadata.namespace !== deployment.metadata.namespace) problems.push('the Service is not in the Deployment\'s namespace');
    const target = service.spec.ports?.[0]?.targetPort;
    if (portNumber(container, target) !== image.watchdogPort) problems.push(`the Service's targetPort ${target} is not the watchdog's port`);
  }
  if (ingress && service) {
    const servicePort = service.spec.ports?.[0];
    const root = (ingress.spec.rules ?? [])
      .flatMap((r: Doc) => r.http?.paths ?? [])
      .find((p: Doc) => p.path === '/' && p.pathType === 'Prefix');
    const backend = root?.backend?.service;
    const samePort = backend && (backend.port?.number === servicePort?.port || (backend.port?.name !== undefined && backend.port.name === servicePort?.name));
    if (!backend || backend.name !== service.metadata.name || !samePort) problems.push('the Ingress does not route / (Prefix) to the Service\'s port');
    if (ingress.metadata.namespace !== service.metadata.namespace) problems.push('the Ingress is not in the Service\'s namespace');
  }
  if (claim && (deployment.spec.replicas ?? 1) > maxReplicasFor(docs, claim)) problems.push(`replicas ${deployment.spec.replicas} do not fit the claim's ${claim.spec.accessModes}`);
  return problems;
}

// Knative 1.17 (pkg/apis/serving/k8s_validation.go): mount paths, env names
// and ports a user container cannot use.
export const KNATIVE_RESERVED_PATHS = ['/', '/dev', '/dev/log'];
export const KNATIVE_RESERVED_ENV = ['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'];
// networking.BackendHTTPPort, BackendHTTP2Port, QueueAdminPort, AutoscalingQueueMetricsPort, UserQueueMetricsPort, profiling.ProfilingPort
export const KNATIVE_RESERVED_PORTS = [8012, 8013, 8022, 9090, 9091, 8008];
/** queue-proxy's /wait-for-drain holds the preStop this long at least (pkg/queue/sharedmain/main.go, drainSleepDuration). */
export const KNATIVE_DRAIN_SECONDS = 30;

/**
 * The Knative target: the image without of-watchdog (the wrapper runs as the
 * watchdog's fprocess would, told by an empty upstream_url that nothing is in
 * front), readiness on the wrapper's /_/health, the claim over IMAGE_DIR, and a
 * timeout (the pod's grace period) that outlasts queue-proxy's drain plus the
 * wrapper's own shutdown bound.
 */
export function checkKnativeTarget(docs: Doc[], fn: StackFunction, image: ImageFacts, closeBoundMs: number): string[] {
  const problems: string[] = [];
  const service = onlyOne(docs, 'Service', 'serving.knative.dev/v1', problems);
  const claim = onlyOne(docs, 'PersistentVolumeClaim', 'v1', problems);
  if (!service) return problems;
  const pod = service.spec.template.spec;
  const container = pod.containers[0];
  if (pod.containers.length !== 1) problems.push('the revision has more than one container');
  checkPod(pod, container, claim, fn, problems);
  if (claim && claim.metadata.namespace !== service.metadata.namespace) problems.push('the claim is not in the Service\'s namespace');
  const command = [...(container.command ?? []), ...(container.args ?? [])].join(' ');
  if (command !== image.env.fprocess) problems.push(`command "${command}" is not the image's fprocess "${image.env.fprocess}"`);
  const env = envOf(container);
  if (env.upstream_url !== '') problems.push('upstream_url is not set to "": the wrapper would wait behind a watchdog that is not there');
  for (const name of KNATIVE_RESERVED_ENV) if (name in env) problems.push(`${name} is reserved by Knative`);
  const ports = (container.ports ?? []).map((p: Doc) => p.containerPort);
  if (ports.length !== 1) problems.push(`expected one containerPort, found ${ports.length}`);
  for (const port of ports) if (KNATIVE_RESERVED_PORTS.includes(port)) problems.push(`port ${port} is reserved by Knative`);
  const probe = container.readinessProbe;
  if (probe?.httpGet?.path !== '/_/health') problems.push('the readiness probe is not GET /_/health');
  if (probe?.httpGet?.port !== undefined && probe.httpGet.port !== ports[0]) problems.push('the readiness probe names another port than the container\'s');
  if (probe?.periodSeconds !== undefined) problems.push('readiness periodSeconds is set: queue-proxy then probes at that period instead of every 50 ms, slowing a cold start');
  for (const mount of container.volumeMounts ?? []) {
    if (KNATIVE_RESERVED_PATHS.includes(path.posix.normalize(mount.mountPath))) problems.push(`${mount.mountPath} is a reserved mount path`);
  }
  const needed = KNATIVE_DRAIN_SECONDS + closeBoundMs / 1000;
  if ((pod.timeoutSeconds ?? 300) <= needed) problems.push(`timeoutSeconds ${pod.timeoutSeconds} is not above queue-proxy's drain + the wrapper's shutdown = ${needed} s`);
  const annotations = service.spec.template.metadata?.annotations ?? {};
  if (annotations['autoscaling.knative.dev/min-scale'] !== '0') problems.push('min-scale is not "0": no scale to zero');
  const max = Number(annotations['autoscaling.knative.dev/max-scale']);
  if (claim && !(max >= 1 && max <= maxReplicasFor(docs, claim))) problems.push(`max-scale ${annotations['autoscaling.knative.dev/max-scale']} does not fit the claim's ${claim.spec.accessModes}`);
  return problems;
}

/** The directive's arguments in an nginx.conf, for each time it appears (comments dropped). */
export function nginxDirective(conf: string, name: string): string[] {
  const bare = conf.replace(/#.*$/gm, '');
  return [...bare.matchAll(new RegExp(`(?:^|[;{}\\s])${name}\\s+([^;{]*);`, 'g'))].map((m) => m[1]!.trim().replace(/\\s+/g, ' '));
}

/**
 * The edge cache (k8s-volumes/cache/): nginx with the ConfigMap's nginx.conf mounted where
 * nginx reads it, every folder the configuration writes on a writable emptyDir under a
 * read-only root, probes and Service on the port it listens on, the Ingress to the cache,
 * the cache rules the tests measured, and an upstream that is the plain target's Service.
 */
export function checkCacheTarget(docs: Doc[], origin: Doc[]): string[] {
  const problems: string[] = [];
  const deployment = onlyOne(docs, 'Deployment', 'apps/v1', problems);
  const service = onlyOne(docs, 'Service', 'v1', problems);
  const ingress = onlyOne(docs, 'Ingress', 'networking.k8s.io/v1', problems);
  const map = onlyOne(docs, 'ConfigMap', 'v1', problems);
  const conf: string | undefined = map?.data?.['nginx.conf'];
  if (!deployment || !map || typeof conf !== 'string') return [...problems, ...(conf === undefined ? ['no nginx.conf in the ConfigMap'] : [])];
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const mounts: Doc[] = container.volumeMounts ?? [];
  const volumeOf = (mount: Doc | undefined): Doc | undefined => mount && (pod.volumes ?? []).find((v: Doc) => v.name === mount.name);
  const configMount = mounts.find((m) => m.mountPath === '/etc/nginx/nginx.conf');
  if (!configMount || configMount.subPath !== 'nginx.conf' || volumeOf(configMount)?.configMap?.name !== map.metadata.name) problems.push("the ConfigMap's nginx.conf is not mounted at /etc/nginx/nginx.conf");
  if (container.securityContext?.readOnlyRootFilesystem !== true) problems.push('the root file system is not read-only');
  if (container.securityContext?.runAsNonRoot !== true) problems.push('nginx may run as root');
  // Every file nginx.conf writes: the pid file, the temp folders, the cache.
  const written = [
    ...nginxDirective(conf, 'pid'),
    ...['client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path'].flatMap((d) => nginxDirective(conf, d)),
    ...nginxDirective(conf, 'proxy_cache_path'),
  ].map((args) => args.split(' ')[0]!);
  if (written.length < 7) problems.push(`nginx.conf names ${written.length} places it writes, expected 7: the pid file, five temp folders and the cache`);
  for (const file of written) {
    const under = mounts.find((m) => mountCovers(m.mountPath, file) && !m.readOnly);
    if (!volumeOf(under)?.emptyDir) problems.push(`${file}: nginx writes it, and no writable emptyDir is mounted over it`);
  }
  const listen = nginxDirective(conf, 'listen').map(Number);
  const http = (container.ports ?? []).find((p: Doc) => p.name === 'http')?.containerPort;
  if (listen.length !== 1 || listen[0] !== http) problems.push(`nginx listens on ${listen.join(', ')}, the container port named http is ${http}`);
  const health = /location = (\S+) \{\s*return 200/.exec(conf)?.[1];
  for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
    const get = container[kind]?.httpGet;
    if (!get || get.path !== health || portNumber(container, get.port) !== http) problems.push(`${kind} is not GET ${health} on nginx's port`);
  }
  for (const [directive, wanted] of [
    ['proxy_cache_lock', 'on'],
    ['proxy_cache_background_update', 'on'],
    ['proxy_cache_revalidate', 'on'],
    ['proxy_hide_header', 'Cache-Control'],
  ] as const) {
    if (!nginxDirective(conf, directive).includes(wanted)) problems.push(`${directive} ${wanted} is missing`);
  }
  const stale = nginxDirective(conf, 'proxy_cache_use_stale')[0]?.split(' ') ?? [];
  for (const when of ['updating', 'error', 'timeout', 'http_500', 'http_503']) if (!stale.includes(when)) problems.push(`proxy_cache_use_stale lacks ${when}`);
  const podLabels: Record<string, string> = deployment.spec.template.metadata?.labels ?? {};
  if (service) {
    const selector = Object.entries(service.spec.selector ?? {});
    if (selector.length === 0 || !selector.every(([k, v]) => podLabels[k] === v)) problems.push("the Service does not select the cache's pods");
    if (portNumber(container, service.spec.ports?.[0]?.targetPort) !== http) problems.push("the Service's targetPort is not nginx's port");
  }
  if (ingress && service) {
    const root = (ingress.spec.rules ?? []).flatMap((r: Doc) => r.http?.paths ?? []).find((p: Doc) => p.path === '/' && p.pathType === 'Prefix');
    if (root?.backend?.service?.name !== service.metadata.name) problems.push('the Ingress does not route / to the cache');
  }
  // The upstream: the plain Kubernetes target's Service, by its cluster DNS name.
  const originService = origin.find((d) => d.kind === 'Service' && d.apiVersion === 'v1');
  const expected = originService && `${originService.metadata.name}.${originService.metadata.namespace}.svc.cluster.local:${originService.spec.ports[0].port}`;
  const servers = nginxDirective(conf, 'server');
  if (servers.length !== 1 || servers[0] !== expected) problems.push(`the upstream is ${servers.join(', ')}, not the function's Service ${expected}`);
  return problems;
}
