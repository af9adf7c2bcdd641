// The flags of the command-line tools the guides use, derived from their
// real sources, so the docs test can tell a flag that exists from one that
// does not. Regenerate them when the guides move to a newer release.
//
// faas-cli: openfaas/faas-cli @ c8191b71 (0.18.12 and later), the cobra flag
//   definitions, `<cmd>.Flags().XxxVar[P](&v, "long", "short", ...)`, in
//   commands/<cmd>.go; the persistent ones in commands/faas.go. `up` adds its
//   own flag set to build's, push's and deploy's (commands/up.go).
// k3d: k3d-io/k3d @ 46f3480d (5.9), cmd/cluster/clusterCreate.go,
//   cmd/cluster/clusterDelete.go, cmd/registry/registryCreate.go,
//   cmd/registry/registryDelete.go, the persistent ones in cmd/root.go.
// kubectl: the Options of `kubectl <verb> --help` and `kubectl options`,
//   kubectl v1.32 (the docs test compares them with the kubectl on PATH,
//   when there is one).
// Every command also takes -h/--help (cobra).

export type FlagTable = Record<string, readonly string[]>;

const FAAS_CLI_PERSISTENT = ['--filter', '--regex', '--yaml', '-f'];

export const FAAS_CLI: FlagTable = {
  build: ['--build-arg', '--build-label', '--build-option', '--copy-extra', '--debug', '--disable-stack-pull', '--envsubst', '--handler', '--image', '--lang', '--name', '--no-cache', '--overwrite', '--parallel', '--pull', '--quiet', '--shrinkwrap', '--squash', '--tag', '-b', '-o'],
  push: ['--envsubst', '--parallel', '--quiet', '--tag'],
  deploy: ['--annotation', '--constraint', '--cpu-limit', '--cpu-request', '--env', '--envsubst', '--fprocess', '--gateway', '--handler', '--image', '--label', '--lang', '--memory-limit', '--memory-request', '--name', '--namespace', '--network', '--read-template', '--readonly', '--replace', '--secret', '--tag', '--timeout', '--tls-no-verify', '--token', '--update', '-e', '-g', '-k', '-l', '-n'],
  up: ['--annotation', '--build-arg', '--build-label', '--build-option', '--builder-public-key', '--constraint', '--copy-extra', '--cpu-limit', '--cpu-request', '--debug', '--disable-stack-pull', '--env', '--envsubst', '--fprocess', '--gateway', '--handler', '--image', '--label', '--lang', '--memory-limit', '--memory-request', '--name', '--namespace', '--network', '--no-cache', '--overwrite', '--parallel', '--payload-secret', '--platforms', '--publish', '--pull', '--quiet', '--read-template', '--readonly', '--remote-builder', '--replace', '--secret', '--shrinkwrap', '--skip-deploy', '--skip-push', '--squash', '--tag', '--timeout', '--tls-no-verify', '--token', '--update', '--watch', '-b', '-e', '-g', '-k', '-l', '-n', '-o'],
  login: ['--gateway', '--password', '--password-stdin', '--timeout', '--tls-no-verify', '--username', '-g', '-p', '-s', '-u'],
  logs: ['--gateway', '--instance', '--json', '--lines', '--name', '--namespace', '--output', '--since', '--since-time', '--tail', '--time-format', '--tls-no-verify', '--token', '-g', '-j', '-k', '-n', '-o', '-t'],
  describe: ['--envsubst', '--gateway', '--json', '--name', '--namespace', '--tls-no-verify', '--token', '--verbose', '-g', '-j', '-k', '-n', '-v'],
  remove: ['--envsubst', '--gateway', '--namespace', '--tls-no-verify', '--token', '-g', '-k', '-n'],
  list: ['--envsubst', '--gateway', '--json', '--namespace', '--quiet', '--sort', '--tls-no-verify', '--token', '--verbose', '-g', '-j', '-k', '-n', '-q', '-v'],
};

const K3D_PERSISTENT = ['--timestamps', '--trace', '--verbose', '--version'];

export const K3D: FlagTable = {
  'cluster create': ['--agents', '--agents-memory', '--api-port', '--config', '--enforce-registry-port-match', '--env', '--gpus', '--host-alias', '--host-pid-mode', '--image', '--k3s-arg', '--k3s-node-label', '--kubeconfig-switch-context', '--kubeconfig-update-default', '--lb-config-override', '--network', '--no-image-volume', '--no-lb', '--no-rollback', '--port', '--registry-config', '--registry-create', '--registry-use', '--runtime-label', '--runtime-ulimit', '--servers', '--servers-memory', '--subnet', '--timeout', '--token', '--volume', '--wait', '-a', '-c', '-e', '-i', '-p', '-s', '-v'],
  'cluster delete': ['--all', '--config', '-a', '-c'],
  'registry delete': ['--all', '-a'],
  'registry create': ['--cluster', '--default-network', '--delete-enabled', '--enforce-port-match', '--image', '--no-help', '--port', '--proxy-password', '--proxy-remote-url', '--proxy-username', '--volume', '-c', '-i', '-p', '-v'],
};

export const KUBECTL_GLOBAL = ['--as', '--as-group', '--as-uid', '--cache-dir', '--certificate-authority', '--client-certificate', '--client-key', '--cluster', '--context', '--disable-compression', '--insecure-skip-tls-verify', '--kubeconfig', '--log-flush-frequency', '--match-server-version', '--namespace', '--password', '--profile', '--profile-output', '--request-timeout', '--server', '--tls-server-name', '--token', '--user', '--username', '--v', '--vmodule', '--warnings-as-errors', '-n', '-s', '-v'];

export const KUBECTL: FlagTable = {
  'apply': ['--all', '--allow-missing-template-keys', '--cascade', '--dry-run', '--field-manager', '--filename', '--force', '--force-conflicts', '--grace-period', '--kustomize', '--openapi-patch', '--output', '--overwrite', '--prune', '--prune-allowlist', '--recursive', '--selector', '--server-side', '--show-managed-fields', '--subresource', '--template', '--timeout', '--validate', '--wait', '-R', '-f', '-k', '-l', '-o'],
  'get': ['--all-namespaces', '--allow-missing-template-keys', '--chunk-size', '--field-selector', '--filename', '--ignore-not-found', '--kustomize', '--label-columns', '--no-headers', '--output', '--output-watch-events', '--raw', '--recursive', '--selector', '--server-print', '--show-kind', '--show-labels', '--show-managed-fields', '--sort-by', '--subresource', '--template', '--watch', '--watch-only', '-A', '-L', '-R', '-f', '-k', '-l', '-o', '-w'],
  'patch': ['--allow-missing-template-keys', '--dry-run', '--field-manager', '--filename', '--kustomize', '--local', '--output', '--patch', '--patch-file', '--recursive', '--show-managed-fields', '--subresource', '--template', '--type', '-R', '-f', '-k', '-o', '-p'],
  'rollout status': ['--filename', '--kustomize', '--recursive', '--revision', '--selector', '--timeout', '--watch', '-R', '-f', '-k', '-l', '-w'],
  'rollout restart': ['--allow-missing-template-keys', '--field-manager', '--filename', '--kustomize', '--output', '--recursive', '--selector', '--show-managed-fields', '--template', '-R', '-f', '-k', '-l', '-o'],
  'port-forward': ['--address', '--pod-running-timeout'],
  'wait': ['--all', '--all-namespaces', '--allow-missing-template-keys', '--field-selector', '--filename', '--for', '--local', '--output', '--recursive', '--selector', '--show-managed-fields', '--template', '--timeout', '-A', '-R', '-f', '-l', '-o'],
  'delete': ['--all', '--all-namespaces', '--cascade', '--dry-run', '--field-selector', '--filename', '--force', '--grace-period', '--ignore-not-found', '--interactive', '--kustomize', '--now', '--output', '--raw', '--recursive', '--selector', '--timeout', '--wait', '-A', '-R', '-f', '-i', '-k', '-l', '-o'],
  'logs': ['--all-containers', '--all-pods', '--container', '--follow', '--ignore-errors', '--insecure-skip-tls-verify-backend', '--limit-bytes', '--max-log-requests', '--pod-running-timeout', '--prefix', '--previous', '--selector', '--since', '--since-time', '--tail', '--timestamps', '-c', '-f', '-l', '-p'],
  'set env': ['--all', '--allow-missing-template-keys', '--containers', '--dry-run', '--env', '--field-manager', '--filename', '--from', '--keys', '--kustomize', '--list', '--local', '--output', '--overwrite', '--prefix', '--recursive', '--resolve', '--selector', '--show-managed-fields', '--template', '-R', '-c', '-e', '-f', '-k', '-l', '-o'],
  'describe': ['--all-namespaces', '--chunk-size', '--filename', '--kustomize', '--recursive', '--selector', '--show-events', '-A', '-R', '-f', '-k', '-l'],
  'run': ['--allow-missing-template-keys', '--annotations', '--attach', '--cascade', '--command', '--dry-run', '--env', '--expose', '--field-manager', '--filename', '--force', '--grace-period', '--image', '--image-pull-policy', '--kustomize', '--labels', '--leave-stdin-open', '--output', '--override-type', '--overrides', '--pod-running-timeout', '--port', '--privileged', '--quiet', '--recursive', '--restart', '--rm', '--save-config', '--show-managed-fields', '--stdin', '--template', '--timeout', '--tty', '--wait', '-R', '-f', '-i', '-k', '-l', '-o', '-q', '-t'],
  'kustomize': ['--as-current-user', '--enable-alpha-plugins', '--enable-helm', '--env', '--helm-api-versions', '--helm-command', '--helm-debug', '--helm-kube-version', '--load-restrictor', '--mount', '--network', '--network-name', '--output', '-e', '-o'],
};

const HELP = ['-h', '--help'];

/** The flags `tool <command>` accepts, or undefined for a command the table does not know. */
export function flagsOf(tool: 'faas-cli' | 'k3d' | 'kubectl', command: string): Set<string> | undefined {
  const table = tool === 'faas-cli' ? FAAS_CLI : tool === 'k3d' ? K3D : KUBECTL;
  const own = table[command];
  if (!own) return undefined;
  const persistent = tool === 'faas-cli' ? FAAS_CLI_PERSISTENT : tool === 'k3d' ? K3D_PERSISTENT : KUBECTL_GLOBAL;
  return new Set([...own, ...persistent, ...HELP]);
}
