// What `faas-cli deploy -f stack.yml [--label K=V] [--env K=V]` sends to the
// gateway, ported from faas-cli 0.18.12 (github.com/openfaas/faas-cli @
// c8191b71): commands/deploy.go builds the request (labels: the stack's, then
// --label over them, util.MergeMap; environment: the stack's, then --env;
// envProcess from template/<lang>/template.yml), proxy/deploy.go sends it: PUT
// /system/functions (a rolling update), and on 404 a POST (a new function).
// No faas-cli binary can be built here (it needs a newer Go), so the tests
// deploy through this port.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { FunctionDeployment } from './faas-netes-ce.ts';
import type { StackFunction } from './deploy-manifests.ts';
import { repoRoot } from './fn.ts';

export interface DeployFlags {
  /** --label K=V, in order. */
  labels?: string[];
  /** --env K=V, in order. */
  env?: string[];
  namespace?: string;
}

/** util.ParseMap: K=V pairs, split at the first "=". */
function parseMap(pairs: string[] = []): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`cannot parse "${pair}": expected K=V`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

export function deployRequest(name: string, fn: StackFunction, flags: DeployFlags = {}): FunctionDeployment {
  const template = parse(readFileSync(path.join(repoRoot, 'template', fn.lang, 'template.yml'), 'utf8')) as { fprocess?: string };
  const resources = (r?: Record<string, string>): { memory?: string; cpu?: string } | undefined =>
    r && (r.memory || r.cpu) ? { ...(r.memory ? { memory: r.memory } : {}), ...(r.cpu ? { cpu: r.cpu } : {}) } : undefined;
  return {
    service: name,
    image: fn.image,
    ...(template.fprocess ? { envProcess: template.fprocess } : {}),
    envVars: { ...fn.environment, ...parseMap(flags.env) },
    labels: { ...fn.labels, ...parseMap(flags.labels) },
    annotations: {},
    ...(resources(fn.limits) ? { limits: resources(fn.limits) } : {}),
    ...(resources(fn.requests) ? { requests: resources(fn.requests) } : {}),
    ...(fn.readonly_root_filesystem ? { readOnlyRootFilesystem: true } : {}),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
  };
}

export interface DeployOutcome {
  /** The method of each call, in order: PUT, then POST after a 404. */
  calls: Array<{ method: string; status: number; body: string }>;
  status: number;
  /** What faas-cli prints for the last answer (proxy/deploy.go). */
  output: string;
}

/** proxy/deploy.go, DeployFunction with --update=true (the default). */
export async function deploy(gateway: string, auth: { user: string; password: string }, request: FunctionDeployment): Promise<DeployOutcome> {
  const calls: DeployOutcome['calls'] = [];
  const send = async (method: 'PUT' | 'POST'): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${gateway}/system/functions`, {
      method,
      headers: { Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(request),
    });
    const answer = { status: res.status, body: await res.text() };
    calls.push({ method, ...answer });
    return answer;
  };
  let answer = await send('PUT');
  if (answer.status === 404) answer = await send('POST');
  const ok = [200, 201, 202].includes(answer.status);
  const output = ok
    ? `Deployed. ${answer.status}.`
    : answer.status === 401
      ? 'unauthorized access, run "faas-cli login" to setup authentication for this server'
      : `Unexpected status: ${answer.status}, message: ${answer.body}`;
  return { calls, status: answer.status, output };
}
