// Knative: the autoscaler removes the last pod by itself once the service has
// had no traffic for the stable window (60 s by default) plus the
// scale-to-zero grace period (30 s by default; config-autoscaler in
// knative-serving). The tool cannot force that, so it waits: with kubectl it
// watches the revision's pods until none is left, without it it sits idle
// for a given time, then times the first request through the activator.
import { ToolError, EXIT_NO_SCALE_TO_ZERO } from './errors.ts';
import { kubectl } from './kubectl.ts';
import type { Progress } from './progress.ts';
import { sleep } from './progress.ts';
import { timePage, untilPage } from './request.ts';
import { coldSummary, type ModeResult, type Run } from './report.ts';

/** Between a non-page answer (a 503 from the activator or the ingress) and the next try. */
const RETRY_MS = 100;

/** Knative's default stable window (60 s) plus scale-to-zero-grace-period (30 s). */
export const DEFAULT_IDLE_SECONDS = 90;

export interface KnativeOptions {
  url: string;
  /** Host header for every call: the route's host, when url is the ingress's address. */
  host?: string;
  runs: number;
  wait: 'kubectl' | 'idle';
  idleSeconds: number;
  /** The Knative Service name and namespace, for the kubectl label selector. */
  service: string;
  namespace: string;
  kubectl: string;
  waitTimeoutMs: number;
  requestTimeoutMs: number;
  pollMs?: number;
}

/**
 * The default domain template is {{.Name}}.{{.Namespace}}.{{.Domain}}, so the
 * host of the URL usually names the service and its namespace.
 */
export function serviceFromUrl(url: string): { service?: string; namespace?: string } {
  const host = new URL(url).hostname;
  if (/^[\d.]+$/.test(host) || host.includes(':') || host === 'localhost') return {};
  const labels = host.split('.');
  return { service: labels[0], namespace: labels.length >= 3 ? labels[1] : undefined };
}

interface PodList {
  items: Array<{ metadata: { name: string; deletionTimestamp?: string }; status?: { phase?: string } }>;
}

async function listPods(options: KnativeOptions): Promise<PodList['items']> {
  const args = ['get', 'pods', '-n', options.namespace, '-l', `serving.knative.dev/service=${options.service}`, '-o', 'json'];
  const stdout = await kubectl(options.kubectl, args, 'Check the kube context, or pass --idle SECONDS to wait a fixed time instead of watching pods.');
  return (JSON.parse(stdout) as PodList).items ?? [];
}

async function waitForNoPods(options: KnativeOptions, progress: Progress, label: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const pods = await listPods(options);
    const elapsed = Date.now() - started;
    if (pods.length === 0) return elapsed;
    if (elapsed > options.waitTimeoutMs) {
      throw new ToolError(
        `${options.service} in ${options.namespace} still has ${pods.length} pod(s) after ${Math.round(elapsed / 1000)} s (--wait-timeout). ` +
          'Check that scale to zero is on (enable-scale-to-zero in config-autoscaler), that the service has no ' +
          'autoscaling.knative.dev/min-scale above 0, and that nothing else sends it traffic.',
        'ENOZERO',
        EXIT_NO_SCALE_TO_ZERO,
      );
    }
    const states = pods.map((p) => `${p.metadata.name} ${p.metadata.deletionTimestamp ? 'Terminating' : (p.status?.phase ?? '?')}`).join(', ');
    progress.tick(`${label} ${states}`, `${label}: waiting for the revision to have no pods (${Math.round(elapsed / 1000)} s): ${states}`, 10_000);
    await sleep(options.pollMs ?? 2000);
  }
}

async function waitIdle(options: KnativeOptions, progress: Progress, label: string): Promise<number> {
  const started = Date.now();
  const until = started + options.idleSeconds * 1000;
  while (Date.now() < until) {
    progress.tick(label, `${label}: idle, ${Math.ceil((until - Date.now()) / 1000)} s left before the cold call`, 10_000);
    await sleep(Math.min(1000, until - Date.now()));
  }
  return Date.now() - started;
}

export async function measureKnative(options: KnativeOptions, progress: Progress): Promise<ModeResult> {
  const how =
    options.wait === 'kubectl'
      ? `watching pods with kubectl (-l serving.knative.dev/service=${options.service} -n ${options.namespace})`
      : `waiting ${options.idleSeconds} s idle before each cold call`;
  progress.say(`knative: ${options.url}${options.host ? ` with Host: ${options.host}` : ''}, ${how}`);
  const get = { timeoutMs: options.requestTimeoutMs, ...(options.host ? { headers: { Host: options.host } } : {}) };
  const runs: Run[] = [];
  for (let i = 1; i <= options.runs; i++) {
    const label = `run ${i}/${options.runs}`;
    const waitedMs = options.wait === 'kubectl' ? await waitForNoPods(options, progress, label) : await waitIdle(options, progress, label);
    progress.say(`${label}: calling ${options.url}`);
    const cold = await untilPage(options.url, { ...get, retryMs: RETRY_MS, boundMs: options.requestTimeoutMs });
    const warm = await timePage(options.url, get);
    progress.say(`${label}: ${coldSummary(cold)}; warm total ${warm.totalMs.toFixed(1)} ms`);
    runs.push({ cold, warm, waitedMs });
  }
  const notes =
    options.wait === 'idle'
      ? [`waited a fixed ${options.idleSeconds} s instead of watching pods: a run is cold only if Knative removed the pod in that time (min-scale 0, no other traffic)`]
      : [];
  return {
    mode: 'knative',
    target: options.host ? `${options.url} (Host: ${options.host})` : options.url,
    runs,
    details: {
      wait: options.wait,
      ...(options.host ? { host: options.host } : {}),
      ...(options.wait === 'idle' ? { idleSeconds: options.idleSeconds } : { service: options.service, namespace: options.namespace }),
    },
    notes,
  };
}
