// What the deployment tests read: stack.yml, the manifests in k8s-volumes/
// (through a small kustomize of our own, so no kubectl is needed), the schema
// models, and a Deployment shaped like the one faas-netes makes, to apply the
// OpenFaaS patch to.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolume, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service as KnativeService } from '@kubernetes-models/knative/serving.knative.dev/v1';
import { repoRoot } from './fn.ts';

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
  'apps/v1/Deployment': Deployment,
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
