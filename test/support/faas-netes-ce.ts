// What OpenFaaS CE's provider, faas-netes, checks before it creates or
// updates a function, ported rule by rule from faas-netes 0.18.17
// (github.com/openfaas/faas-netes @ 662ce9ce, pkg/handlers/validate.go and
// deploy.go) so the stand-in gateway answers with the same status and words.
// Messages are copied exactly; a new faas-netes release can be diffed against
// the comments below.
import http from 'node:http';
import https from 'node:https';

/** types.FunctionDeployment (faas-provider types/function_deployment.go), as JSON. */
export interface FunctionDeployment {
  service?: string;
  image?: string;
  namespace?: string;
  envProcess?: string;
  envVars?: Record<string, string>;
  constraints?: string[];
  secrets?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  limits?: { memory?: string; cpu?: string };
  requests?: { memory?: string; cpu?: string };
  readOnlyRootFilesystem?: boolean;
}

// pkg/handlers/replica_reader.go
export const MAX_REPLICAS = 5;
export const MAX_FUNCTIONS = 15;

// validate.go: RFC-1123, as k8s.io/kubernetes/pkg/util/validation.
const validDNS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Go's strconv.Atoi: an optional sign and decimal digits, nothing else. */
function atoi(value: string): number | undefined {
  return /^[+-]?\d+$/.test(value) ? Number(value) : undefined;
}

/** validate.go, validateScalingLabels: the CE limits on the scaling labels. */
export function validateScalingLabels(labels: Record<string, string> | undefined): string | undefined {
  if (!labels) return undefined;
  if (labels['com.openfaas.scale.zero'] === 'true') return 'com.openfaas.scale.zero not available for Community Edition';
  if ('com.openfaas.scale.zero-duration' in labels) return 'com.openfaas.scale.zero-duration not available for Community Edition';
  if ('com.openfaas.scale.target' in labels) return 'com.openfaas.scale.target not available for Community Edition';
  if ('com.openfaas.scale.type' in labels) return 'com.openfaas.scale.type not available for Community Edition';
  const max = labels['com.openfaas.scale.max'];
  if (max !== undefined && (atoi(max) ?? 0) > MAX_REPLICAS) return 'com.openfaas.scale.max is set too high for Community Edition';
  const min = labels['com.openfaas.scale.min'];
  if (min !== undefined && (atoi(min) ?? 0) > MAX_REPLICAS) return 'com.openfaas.scale.min is set too high for Community Edition';
  return undefined;
}

/** validate.go, ValidateDeployRequest; `ce: false` leaves out the CE-only label limits. */
export function validateDeployRequest(request: FunctionDeployment, ce: boolean): string | undefined {
  if (!request.service) return 'service: is required';
  if (!validDNS.test(request.service)) return `service: (${request.service}) is invalid, must be a valid DNS entry`;
  if (!request.image) return 'image: is required';
  return ce ? validateScalingLabels(request.labels) : undefined;
}

/** deploy.go, buildAnnotations: the CE limits on annotations. */
export function annotationError(annotations: Record<string, string> | undefined): string | undefined {
  const all = annotations ?? {};
  if (all.topic?.includes(',')) return 'the topic annotation may only support one value in the Community Edition';
  for (const key of Object.keys(all)) {
    if (key.includes('amazonaws.com') || key.includes('gke.io')) return `annotation "${key}" is not supported in the Community Edition`;
  }
  return undefined;
}

/** An image reference as go-containerregistry's name.ParseReference reads it (defaults: Docker Hub, library/, latest). */
export interface ImageReference {
  registry: string;
  repository: string;
  reference: string;
}

export function parseReference(image: string): ImageReference | undefined {
  const at = image.indexOf('@');
  let rest = at === -1 ? image : image.slice(0, at);
  let reference = at === -1 ? '' : image.slice(at + 1);
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  let registry = 'index.docker.io';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    rest = rest.slice(slash + 1);
  }
  const colon = rest.lastIndexOf(':');
  if (!reference) {
    reference = colon === -1 ? 'latest' : rest.slice(colon + 1);
    if (colon !== -1) rest = rest.slice(0, colon);
  }
  if (registry === 'index.docker.io' && !rest.includes('/')) rest = `library/${rest}`;
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(rest) || !reference) return undefined;
  return { registry, repository: rest, reference };
}

/**
 * go-containerregistry pkg/name/registry.go, Registry.Scheme(): registries
 * that may be reached over plain http (after https fails,
 * pkg/v1/remote/transport/ping.go): RFC 1918 addresses, localhost:, names
 * ending in .local or .localhost, 127.0.0.1, ::1.
 */
export function mayUseHttp(registry: string): boolean {
  const host = registry.split(':')[0]!;
  const octets = host.split('.').map(Number);
  const rfc1918 =
    octets.length === 4 &&
    octets.every((o) => Number.isInteger(o) && o >= 0 && o <= 255) &&
    (octets[0] === 10 || (octets[0] === 172 && octets[1]! >= 16 && octets[1]! <= 31) || (octets[0] === 192 && octets[1] === 168));
  return rfc1918 || registry.startsWith('localhost:') || /.*\.local(?:host)?(?::\d{1,5})?$/.test(registry) || registry.includes('127.0.0.1') || registry.includes('::1');
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the registry; `address` is where its name resolves (the cluster's DNS). */
function request(scheme: 'http' | 'https', address: string, host: string, method: string, pathAndQuery: string, headers: Record<string, string>): Promise<Answer> {
  const [hostname, port] = address.split(':');
  const client = scheme === 'https' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      { hostname, port: port ? Number(port) : scheme === 'https' ? 443 : 80, method, path: pathAndQuery, headers: { Host: host, ...headers }, servername: host.split(':')[0], timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(',');

/**
 * validate.go, isAnonymous: remote.Head(ref, remote.WithAuth(authn.Anonymous)).
 * The ping (GET /v2/) tries https, then http where mayUseHttp allows; a Bearer
 * challenge gets an anonymous token for repository:<repo>:pull; then a HEAD of
 * the manifest must answer 200. `resolve` maps a registry's host:port to the
 * address it reaches (in a cluster, CoreDNS; k3d adds its registry there).
 * Returns the error faas-netes answers with, or undefined for a public image.
 */
export async function isAnonymous(image: string, resolve: (registry: string) => string = (r) => r): Promise<string | undefined> {
  const ref = parseReference(image);
  if (!ref) return `unable to parse image reference: could not parse reference: ${image}`;
  const address = resolve(ref.registry);
  const schemes: Array<'http' | 'https'> = mayUseHttp(ref.registry) ? ['https', 'http'] : ['https'];
  for (const scheme of schemes) {
    try {
      const ping = await request(scheme, address, ref.registry, 'GET', '/v2/', {});
      const headers: Record<string, string> = { Accept: MANIFEST_TYPES };
      if (ping.status === 401) {
        const challenge = String(ping.headers['www-authenticate'] ?? '');
        if (/^bearer /i.test(challenge)) {
          const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
          const realm = new URL(params.realm!);
          if (params.service) realm.searchParams.set('service', params.service);
          realm.searchParams.set('scope', `repository:${ref.repository}:pull`);
          const token = await request(realm.protocol === 'https:' ? 'https' : 'http', resolve(realm.host), realm.host, 'GET', `${realm.pathname}${realm.search}`, {});
          if (token.status !== 200) break;
          const { token: t, access_token: at } = JSON.parse(token.body) as { token?: string; access_token?: string };
          headers.Authorization = `Bearer ${t ?? at}`;
        }
        // A Basic challenge with anonymous credentials sends no Authorization at all.
      } else if (ping.status !== 200) {
        break;
      }
      const head = await request(scheme, address, ref.registry, 'HEAD', `/v2/${ref.repository}/manifests/${ref.reference}`, headers);
      if (head.status === 200) return undefined;
      break;
    } catch {
      // This scheme did not answer: try the next one, if any.
    }
  }
  return 'the Community Edition license agreement only allows public images';
}
