// The edge cache of k8s-volumes/cache/ run for real: Debian's nginx with the nginx.conf of
// that ConfigMap, as a user applies it, changed only where a cluster and this machine
// differ (each change must apply exactly once, so an edit of the ConfigMap that moves one
// of them fails here, loudly): the upstream is the replicas on 127.0.0.1, nginx listens on
// 127.0.0.1, its files go to a temp folder. Started unprivileged (as nobody when the tests
// run as root), in the foreground (`nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'`).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readYaml, volumesDir } from './deploy-manifests.ts';
import { repoRoot, watch, type Running } from './fn.ts';
import { freePort, waitForPort } from './ports.ts';

export const CACHE_CONFIGMAP = path.join(volumesDir, 'cache/configmap.yaml');
/** The unprivileged user nginx runs as when the tests are root: Debian's nobody. */
const NOBODY = 65534;

export interface EdgeCache extends Running {
  url: string;
  port: number;
  /** The folder with nginx.conf, the cache and the logs. */
  dir: string;
  close(): Promise<void>;
}

const onPath = (command: string): boolean => spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${command}`]).status === 0;

/** Why nginx cannot run here, or undefined; installs Debian's nginx when root and missing. */
export function nginxUnavailable(): string | undefined {
  if (onPath('nginx')) return undefined;
  spawnSync('bash', [path.join(repoRoot, 'scripts/ensure-debian-packages.sh'), 'nginx:nginx'], { stdio: 'inherit' });
  return onPath('nginx') ? undefined : 'nginx is not installed (Debian: apt-get install nginx)';
}

/** The ConfigMap's nginx.conf. */
export function cacheConfig(): string {
  const [map] = readYaml(CACHE_CONFIGMAP);
  const conf = map?.data?.['nginx.conf'];
  if (typeof conf !== 'string') throw new Error(`${CACHE_CONFIGMAP} holds no nginx.conf`);
  return conf;
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const found = text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
  if (found !== 1) throw new Error(`${path.relative(repoRoot, CACHE_CONFIGMAP)}: expected one ${what} (${pattern}), found ${found}`);
  return text.replace(new RegExp(pattern.source, 'm'), replacement);
}

/** The ConfigMap's nginx.conf for this machine: the replicas as the upstream, every file in `dir`. */
export function localConfig(dir: string, port: number, upstreams: string[]): string {
  let conf = cacheConfig().replaceAll(' /tmp/', ` ${dir}/`);
  conf = replaceOnce(conf, /^( *)server todo-app\.todo-app\.svc\.cluster\.local:80;$/, upstreams.map((u) => `$1server ${u};`).join('\n'), 'upstream server line');
  conf = replaceOnce(conf, /^( *)listen 8080;$/, `$1listen 127.0.0.1:${port};`, 'listen line');
  conf = replaceOnce(conf, /^( *)proxy_cache_path \/var\/cache\/todo-app /, `$1proxy_cache_path ${dir}/cache `, 'proxy_cache_path');
  return conf;
}

export async function startEdgeCache(upstreams: string[]): Promise<EdgeCache> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-edge-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), localConfig(dir, port, upstreams));
  const root = process.getuid?.() === 0;
  if (root) fs.chownSync(dir, NOBODY, NOBODY);
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], {
    env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(root ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  const running = watch(child);
  const close = async (): Promise<void> => {
    await running.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => running.alive() && child.kill('SIGKILL'));
  try {
    await waitForPort(port, 10_000, running.alive);
  } catch (error) {
    await close();
    throw new Error(`nginx did not start: ${(error as Error).message}\n${running.output()}`);
  }
  return { ...running, url: `http://127.0.0.1:${port}`, port, dir, close };
}
