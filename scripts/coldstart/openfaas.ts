// OpenFaaS: scale the function to zero through the gateway's REST API (the
// calls faas-cli and the Pro autoscaler make), wait until no replica is
// available, then time the first call through /function/<name>/: the gateway
// holds it while it scales from zero, as a user's browser would be held.
//
// OpenFaaS CE never lets a function stay at zero, and the tool says so rather
// than time something that was never cold. With --kubectl-scale it measures
// what CE can show instead: a replacement pod, from `kubectl scale --replicas=0`
// (which faas-netes CE undoes) to the first 200 page.
//
// API, as in openfaas/faas and faas-netes:
//   GET  /system/function/<name>?namespace=<ns>        FunctionStatus {replicas, availableReplicas}
//   POST /system/scale-function/<name>?namespace=<ns>  {"serviceName","replicas","namespace"} -> 200/202
//   ANY  /function/<name>[.<ns>]/...                   the function, prefix stripped
// Both /system routes take basic auth; newer faas-provider types mark
// replicas and availableReplicas `omitempty`, so an absent field means 0.
import { ToolError, EXIT_NO_SCALE_TO_ZERO } from './errors.ts';
import { kubectl } from './kubectl.ts';
import type { Progress } from './progress.ts';
import { sleep } from './progress.ts';
import { timePage, untilPage, describeNetworkError } from './request.ts';
import { coldSummary, type ModeResult, type Run } from './report.ts';

export interface OpenFaasOptions {
  gateway: string;
  user: string;
  password: string;
  functionName: string;
  /** Unset: the gateway's default namespace (openfaas-fn). */
  namespace?: string;
  runs: number;
  /** Bound on the wait for zero available replicas, per run. */
  waitTimeoutMs: number;
  requestTimeoutMs: number;
  /** OpenFaaS CE: scale the Deployment to 0 with kubectl, which faas-netes undoes, and time the replacement pod. */
  kubectlScale?: boolean;
  /** The kubectl to run (default kubectl). */
  kubectl?: string;
  /** How long desired replicas may stay above 0 after the scale call before the gateway counts as refusing. */
  resetGraceMs?: number;
  pollMs?: number;
}

interface FunctionStatus {
  replicas: number;
  availableReplicas: number;
}

/**
 * The gateway's cache of replica counts: gateway/main.go, `CacheExpiry: time.Millisecond * 250`.
 * A call within it after the count last said "available" is proxied without a scale from
 * zero (scaling/function_scaler.go), to a function that has no endpoint: the provider's 503.
 */
export const GATEWAY_REPLICA_CACHE_MS = 250;
/** Beyond the cache's expiry, for timer and clock granularity. */
const CACHE_MARGIN_MS = 50;
/** Between a non-page answer and the next try: as often as the gateway polls (main.go, FunctionPollInterval). */
const RETRY_MS = 100;

export const CE_EXPLANATION =
  'OpenFaaS CE never lets a function stay at zero replicas. Its gateway turns a scale to 0 into 1 before the provider sees it ' +
  '(openfaas/faas gateway/scaling/ranges.go: replicas below 1 become 1, and the call is accepted); faas-netes CE answers a direct ' +
  'scale to 0 with 400 "replicas cannot be set to 0 in OpenFaaS CE" (pkg/handlers/replica_updater.go) and puts a Deployment ' +
  'scaled to 0 with kubectl back to 1 (pkg/handlers/informers.go; within about 150 ms on a real cluster). ' +
  'Scale to zero needs OpenFaaS Standard or Pro, with the function deployed with ' +
  '--label com.openfaas.scale.zero=true --label com.openfaas.scale.zero-duration=15m (docs/deploy.md), ' +
  'or Knative: `npm run coldstart -- knative --url <service URL>`. ' +
  'What CE can show is a replacement pod: add --kubectl-scale to time, from a kubectl scale to 0, the gap until the first 200 page.';

export class Gateway {
  private readonly base: string;
  private readonly auth: string;

  constructor(private readonly options: OpenFaasOptions) {
    this.base = options.gateway.replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${options.user}:${options.password}`).toString('base64')}`;
  }

  private query(): string {
    return this.options.namespace ? `?namespace=${encodeURIComponent(this.options.namespace)}` : '';
  }

  /** Where users call the function: the namespace rides in the name, as the gateway routes it. */
  invokeUrl(): string {
    const name = this.options.namespace ? `${this.options.functionName}.${this.options.namespace}` : this.options.functionName;
    return `${this.base}/function/${name}/`;
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const url = `${this.base}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { Authorization: this.auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      const plain = describeNetworkError(cause, this.base);
      if ((error as Error).name === 'TimeoutError') {
        throw new ToolError(`the gateway ${this.base} did not answer ${method} ${path} within ${this.options.requestTimeoutMs} ms`, 'ETIMEDOUT');
      }
      throw new ToolError(`the gateway is unreachable: ${plain ?? (cause as Error).message}`, 'EUNREACHABLE');
    }
    const text = await response.text();
    if (response.status === 401 || response.status === 403) {
      throw new ToolError(
        `the gateway answered ${response.status} ${response.status === 401 ? 'Unauthorized' : 'Forbidden'} to ${method} ${path} ` +
          `as user "${this.options.user}": check --user/--password or OPENFAAS_USER/OPENFAAS_PASSWORD ` +
          '(the same basic auth as faas-cli login; the admin password is in the basic-auth secret of the openfaas namespace)',
        'EAUTH',
      );
    }
    return { status: response.status, text };
  }

  async status(): Promise<FunctionStatus> {
    const { functionName, namespace } = this.options;
    const { status, text } = await this.call('GET', `/system/function/${functionName}${this.query()}`);
    if (status === 404) {
      throw new ToolError(
        `the gateway has no function "${functionName}"${namespace ? ` in namespace ${namespace}` : ''}: deploy it (faas-cli deploy) or pass --function/--namespace`,
        'ENOFUNCTION',
      );
    }
    if (status !== 200) throw new ToolError(`GET /system/function/${functionName} answered ${status}: ${text.slice(0, 200)}`, 'EGATEWAY');
    let parsed: { replicas?: number; availableReplicas?: number };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new ToolError(`GET /system/function/${functionName} did not answer JSON: ${text.slice(0, 200)}`, 'EGATEWAY');
    }
    return { replicas: parsed.replicas ?? 0, availableReplicas: parsed.availableReplicas ?? 0 };
  }

  async scale(replicas: number): Promise<void> {
    const { functionName, namespace } = this.options;
    const body = { serviceName: functionName, replicas, ...(namespace ? { namespace } : {}) };
    const { status, text } = await this.call('POST', `/system/scale-function/${functionName}${this.query()}`, body);
    if (status >= 200 && status < 300) return;
    const answer = `${status}${text.trim() ? ` "${text.trim().slice(0, 200)}"` : ''}`;
    if (replicas === 0 && status >= 400 && status < 500 && status !== 404) {
      throw new ToolError(`${this.base} refused to scale ${functionName} to zero replicas: it answered ${answer}. ${CE_EXPLANATION}`, 'ENOZERO', EXIT_NO_SCALE_TO_ZERO);
    }
    throw new ToolError(`POST /system/scale-function/${functionName} with ${replicas} replicas answered ${answer}`, 'EGATEWAY');
  }
}

async function waitForZero(gateway: Gateway, options: OpenFaasOptions, progress: Progress, label: string): Promise<number> {
  const started = Date.now();
  const grace = options.resetGraceMs ?? 3000;
  const poll = options.pollMs ?? 250;
  let resetSince: number | undefined;
  for (;;) {
    const now = Date.now();
    const { replicas, availableReplicas } = await gateway.status();
    if (availableReplicas === 0 && replicas === 0) return now - started;
    // The scale call was accepted but desired replicas went back above zero
    // (something else scales the function, e.g. an autoscaler with a
    // minimum): nothing will ever be cold.
    if (replicas > 0) {
      resetSince ??= now;
      if (now - resetSince >= grace) {
        throw new ToolError(
          `the gateway accepted the scale to 0 but keeps ${options.functionName} at ${replicas} replica${replicas === 1 ? '' : 's'} ` +
            `(${availableReplicas} available) ${Math.round((now - started) / 1000)} s later: it does not scale to zero. ${CE_EXPLANATION}`,
          'ENOZERO',
          EXIT_NO_SCALE_TO_ZERO,
        );
      }
    } else {
      resetSince = undefined;
    }
    if (now - started > options.waitTimeoutMs) {
      throw new ToolError(
        `${options.functionName} still has ${availableReplicas} available replica${availableReplicas === 1 ? '' : 's'} ` +
          `${Math.round(options.waitTimeoutMs / 1000)} s after the scale to 0 (--wait-timeout). If pods are stuck terminating, see kubectl get pods -n ${options.namespace ?? 'openfaas-fn'}.`,
        'ENOZERO',
        EXIT_NO_SCALE_TO_ZERO,
      );
    }
    progress.tick(`${label} ${availableReplicas}/${replicas}`, `${label}: waiting for zero replicas (${availableReplicas} available, ${replicas} desired, ${Math.round((now - started) / 1000)} s)`);
    await sleep(poll);
  }
}

/** A scale to zero through the gateway, the wait for it, the wait out of the gateway's cache, then the cold call. */
async function fromZero(gateway: Gateway, url: string, options: OpenFaasOptions, progress: Progress, label: string): Promise<Run> {
  progress.say(`${label}: scaling ${options.functionName} to 0`);
  await gateway.scale(0);
  const waitedMs = await waitForZero(gateway, options, progress, label);
  progress.say(`${label}: zero replicas after ${(waitedMs / 1000).toFixed(1)} s; waiting out the gateway's replica cache (${GATEWAY_REPLICA_CACHE_MS} ms), then calling ${url}`);
  await sleep(GATEWAY_REPLICA_CACHE_MS + CACHE_MARGIN_MS);
  const cold = await untilPage(url, { timeoutMs: options.requestTimeoutMs, retryMs: RETRY_MS, boundMs: options.requestTimeoutMs });
  const warm = await timePage(url, { timeoutMs: options.requestTimeoutMs });
  progress.say(`${label}: ${coldSummary(cold)}; warm total ${warm.totalMs.toFixed(1)} ms`);
  return { cold, warm, waitedMs };
}

/**
 * OpenFaaS CE: the Deployment scaled to 0 with kubectl, as a user could; faas-netes puts it back
 * to 1 (pkg/handlers/informers.go) and a new pod starts. Timed from the scale, with calls every
 * RETRY_MS meanwhile: the first answer is whatever the gateway gives in that gap.
 */
async function replacedPod(gateway: Gateway, url: string, options: OpenFaasOptions, progress: Progress, label: string): Promise<Run> {
  const namespace = options.namespace ?? 'openfaas-fn';
  progress.say(`${label}: kubectl scale deployment ${options.functionName} -n ${namespace} --replicas=0 (faas-netes CE puts it back to 1)`);
  await kubectl(options.kubectl ?? 'kubectl', ['scale', 'deployment', options.functionName, '-n', namespace, '--replicas=0'], 'Check the kube context and that the function is in that namespace (--namespace).');
  const scaledAt = performance.now();
  const backToOne = watchReplicasBack(gateway, scaledAt, options.requestTimeoutMs);
  const cold = await untilPage(url, { timeoutMs: options.requestTimeoutMs, retryMs: RETRY_MS, boundMs: options.requestTimeoutMs, startedAt: scaledAt });
  const backMs = await backToOne;
  const warm = await timePage(url, { timeoutMs: options.requestTimeoutMs });
  progress.say(
    `${label}: from the scale, ${coldSummary(cold)}; replicas back to ${backMs === undefined ? '? (not seen)' : `1 after ${backMs.toFixed(0)} ms`}; warm total ${warm.totalMs.toFixed(1)} ms`,
  );
  return { cold, warm, waitedMs: 0, ...(backMs === undefined ? {} : { replicasBackAfterMs: backMs }) };
}

/** When the provider's desired replicas are above 0 again, in ms since `since`; undefined if not within the bound. */
async function watchReplicasBack(gateway: Gateway, since: number, boundMs: number): Promise<number | undefined> {
  while (performance.now() - since < boundMs) {
    const { replicas } = await gateway.status();
    if (replicas > 0) return performance.now() - since;
    await sleep(25);
  }
  return undefined;
}

export async function measureOpenFaas(options: OpenFaasOptions, progress: Progress): Promise<ModeResult> {
  const gateway = new Gateway(options);
  const url = gateway.invokeUrl();
  const initial = await gateway.status();
  progress.say(`${options.functionName}: ${initial.availableReplicas} of ${initial.replicas} replica(s) available at ${options.gateway}`);
  const runs: Run[] = [];
  try {
    for (let i = 1; i <= options.runs; i++) {
      const label = `run ${i}/${options.runs}`;
      runs.push(await (options.kubectlScale ? replacedPod : fromZero)(gateway, url, options, progress, label));
    }
  } finally {
    // Leave the function as it was found, best effort: a failed run must not
    // leave a production function at zero or at one replica.
    await restore(gateway, initial.replicas, progress);
  }
  const replaced = options.kubectlScale === true;
  return {
    mode: 'openfaas',
    target: url,
    runs,
    details: {
      gateway: options.gateway,
      function: options.functionName,
      namespace: options.namespace ?? null,
      initialReplicas: initial.replicas,
      cold: replaced ? 'kubectl scale to 0, undone by faas-netes CE: a replacement pod, not a scale from zero' : 'a scale to zero through the gateway',
    },
    notes: replaced
      ? [
          'OpenFaaS CE keeps one replica at least (gateway/scaling/ranges.go, faas-netes pkg/handlers/informers.go): ' +
            'these runs time a replacement pod after kubectl scale --replicas=0, from the scale to the first 200 page, not a scale from zero.',
        ]
      : [],
    ...(replaced ? { coldFrom: 'the kubectl scale to 0' } : {}),
  };
}

async function restore(gateway: Gateway, replicas: number, progress: Progress): Promise<void> {
  try {
    const now = await gateway.status();
    if (now.replicas === replicas) return;
    progress.say(`restoring ${replicas} replica(s)`);
    await gateway.scale(replicas);
  } catch (error) {
    progress.say(`could not restore ${replicas} replica(s): ${(error as Error).message}`);
  }
}
