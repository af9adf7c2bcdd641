// npm run coldstart -- <openfaas|knative|local> [options]
// Times the first request after scale to zero, beside a warm one. See --help
// and docs/coldstart.md.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ToolError, EXIT_USAGE, EXIT_FAILED } from './coldstart/errors.ts';
import { DEFAULT_IDLE_SECONDS, measureKnative, serviceFromUrl } from './coldstart/knative.ts';
import { measureLocal } from './coldstart/local.ts';
import { GATEWAY_REPLICA_CACHE_MS, measureOpenFaas } from './coldstart/openfaas.ts';
import { progressOn } from './coldstart/progress.ts';
import { buildReport, formatReport, type ModeResult } from './coldstart/report.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODES = ['openfaas', 'knative', 'local'] as const;
type Mode = (typeof MODES)[number];

export const HELP = `Usage: npm run coldstart -- <mode> [options]
       node --import tsx scripts/coldstart.ts <mode> [options]

Times the first request to todo-app after it had no replica, N times: the
first answer (its status and first byte: a platform may answer 500 or 503
before the function can), and the first 200 page (first and last byte; the
tool asks again until it comes), beside a warm request made right after each
cold one; it counts the runs whose first answer was a 5xx or a 3xx. Progress
goes to stderr; the table (or --json) to stdout.

Modes (first argument, or --mode):

  openfaas   Scale the function to zero through the gateway's REST API
             (POST /system/scale-function/<name>), wait until
             GET /system/function/<name> reports no available replica, wait
             out the gateway's replica cache (${GATEWAY_REPLICA_CACHE_MS} ms), then
             GET /function/<name>/: the gateway holds that call while it
             scales from zero. Needs OpenFaaS Standard/Pro: OpenFaaS CE never
             lets a function stay at zero (its gateway turns 0 into 1,
             faas-netes puts a Deployment at 0 back to 1); the tool explains
             that and exits with 3.
               --gateway URL      default $OPENFAAS_URL or http://127.0.0.1:8080
               --user NAME        default $OPENFAAS_USER or admin
               --password PASS    default $OPENFAAS_PASSWORD (basic auth, as faas-cli login)
               --function NAME    default todo-app
               --namespace NS     function namespace (default: the gateway's, openfaas-fn)
               --kubectl-scale    OpenFaaS CE: instead, kubectl scale the Deployment to 0,
                                  which faas-netes undoes, and time from the scale to the
                                  first 200 page: a replacement pod, not a scale from zero
               --kubectl PATH     default kubectl
             Examples:
               OPENFAAS_PASSWORD=$(kubectl get secret -n openfaas basic-auth \\
                 -o jsonpath='{.data.basic-auth-password}' | base64 -d) \\
               npm run coldstart -- openfaas --gateway http://127.0.0.1:8080 -n 5
               npm run coldstart -- openfaas --kubectl-scale -n 5

  knative    Wait until the service's revision has no pod, then GET the
             service URL (the activator holds it while a pod starts). With
             kubectl on PATH the tool watches
             kubectl get pods -l serving.knative.dev/service=<name> -n <ns>
             until none is left; else (or with --idle) it waits a fixed time.
               --url URL          the service URL (kubectl get ksvc todo-app), or the
                                  ingress's own address when --host is given
               --host NAME        send Host: NAME, the route's host (kubectl get ksvc
                                  todo-app -o jsonpath='{.status.url}' without http://),
                                  for an ingress reached by address, e.g. a port-forward
               --idle SECONDS     wait this long instead of watching pods
                                  (default without kubectl: ${DEFAULT_IDLE_SECONDS}, Knative's stable
                                  window 60 s + scale-to-zero grace period 30 s)
               --service NAME     default: first label of the host (--host, else the URL's)
               --namespace NS     default: second label of that host, else default
               --kubectl PATH     default kubectl
             Examples:
               npm run coldstart -- knative --url http://127.0.0.1:8090 --host todo-app.default.example.com -n 3
               npm run coldstart -- knative --url http://todo-app.default.example.com --idle 120

  local      No cluster, no network: start the function as the platform does
             (node dist/index.js, configured by its environment, IMAGE_DIR on
             a warm volume) and time spawn -> first 200 with the page; stop it
             with SIGTERM; repeat. An empty IMAGE_DIR is warmed first by one
             process that downloads from an embedded source on 127.0.0.1.
             Other function variables (IMAGE_WIDTH, LOG_LEVEL...) are passed on
             from the environment. Run npm run build first.
               --image-dir DIR    the volume folder (default: a temporary one)
               --image-url URL    source for warming (default: the embedded one)
               --entry FILE       default dist/index.js
             Example:
               npm run build && npm run coldstart -- local -n 7

Common options:
  -n, --runs N           cold runs (default 5)
      --json             print one JSON object of the figures on stdout
      --timeout SECONDS  bound on one request (default 60)
      --wait-timeout S   bound on the wait for zero replicas, per run
                         (default 120 openfaas, 300 knative)
  -q, --quiet            no progress on stderr
  -h, --help             this text

Exit codes: 0 measured; 1 failed (unreachable, 401, a 4xx or no 200 page...);
2 usage; 3 the platform did not scale the function to zero.
`;

/** The options parseArgs accepts (the docs test checks the guide's commands against them). */
export const options = {
  mode: { type: 'string' },
  runs: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  'wait-timeout': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  gateway: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  function: { type: 'string' },
  namespace: { type: 'string' },
  url: { type: 'string' },
  host: { type: 'string' },
  idle: { type: 'string' },
  service: { type: 'string' },
  kubectl: { type: 'string' },
  'kubectl-scale': { type: 'boolean' },
  'image-dir': { type: 'string' },
  'image-url': { type: 'string' },
  entry: { type: 'string' },
} as const;

function usage(message: string): never {
  throw new ToolError(`${message} (see --help)`, 'EUSAGE', EXIT_USAGE);
}

function number(raw: string | undefined, name: string, fallback: number, min = 0): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) usage(`--${name} must be a number of at least ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function onPath(command: string): boolean {
  try {
    execFileSync(command, ['version', '--client'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const mode = (positionals[0] ?? values.mode) as Mode | undefined;
  if (!mode) usage(`name a mode: ${MODES.join(', ')}`);
  if (!MODES.includes(mode)) usage(`unknown mode "${mode}": one of ${MODES.join(', ')}`);
  if (positionals.length > 1) usage(`unexpected argument "${positionals[1]}"`);

  const runs = number(values.runs, 'runs', 5, 1);
  if (!Number.isInteger(runs)) usage('--runs must be a whole number');
  const requestTimeoutMs = number(values.timeout, 'timeout', 60) * 1000;
  const progress = progressOn(process.stderr, values.quiet);

  let result: ModeResult;
  switch (mode) {
    case 'openfaas': {
      const password = values.password ?? process.env.OPENFAAS_PASSWORD;
      if (password === undefined) usage('openfaas needs --password or OPENFAAS_PASSWORD (the gateway basic auth, as faas-cli login)');
      result = await measureOpenFaas(
        {
          gateway: values.gateway ?? process.env.OPENFAAS_URL ?? 'http://127.0.0.1:8080',
          user: values.user ?? process.env.OPENFAAS_USER ?? 'admin',
          password,
          functionName: values.function ?? 'todo-app',
          namespace: values.namespace,
          runs,
          waitTimeoutMs: number(values['wait-timeout'], 'wait-timeout', 120) * 1000,
          requestTimeoutMs,
          kubectlScale: values['kubectl-scale'] === true,
          kubectl: values.kubectl ?? 'kubectl',
        },
        progress,
      );
      break;
    }
    case 'knative': {
      if (!values.url) usage('knative needs --url, the service URL (kn service describe todo-app -o url)');
      try {
        new URL(values.url);
      } catch {
        usage(`--url is not a URL: ${values.url}`);
      }
      if (values.host !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?$/i.test(values.host)) usage(`--host is not a host name: ${values.host}`);
      const guessed = serviceFromUrl(values.host ? `http://${values.host}` : values.url);
      const kubectl = values.kubectl ?? 'kubectl';
      const wait = values.idle === undefined && onPath(kubectl) ? 'kubectl' : 'idle';
      const service = values.service ?? guessed.service;
      if (wait === 'kubectl' && !service) usage('cannot tell the service name from the URL: pass --host or --service (or --idle SECONDS)');
      result = await measureKnative(
        {
          url: values.url,
          host: values.host,
          runs,
          wait,
          idleSeconds: number(values.idle, 'idle', DEFAULT_IDLE_SECONDS),
          service: service ?? '',
          namespace: values.namespace ?? guessed.namespace ?? 'default',
          kubectl,
          waitTimeoutMs: number(values['wait-timeout'], 'wait-timeout', 300) * 1000,
          requestTimeoutMs,
        },
        progress,
      );
      break;
    }
    case 'local':
      result = await measureLocal(
        {
          entry: path.resolve(values.entry ?? path.join(repoRoot, 'dist/index.js')),
          cwd: repoRoot,
          runs,
          imageDir: values['image-dir'],
          imageUrl: values['image-url'],
          startTimeoutMs: 30_000,
          requestTimeoutMs,
        },
        progress,
      );
      break;
  }
  const report = buildReport(result);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof ToolError) {
        process.stderr.write(`coldstart: ${error.message}\n`);
        process.exitCode = error.exitCode;
      } else {
        process.stderr.write(`coldstart: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
        process.exitCode = EXIT_FAILED;
      }
    },
  );
}
