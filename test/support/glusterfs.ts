// A real GlusterFS volume on this machine, mounted twice with FUSE: two "nodes" over one
// ReadWriteMany volume, each mount with its own client caches, as two Kubernetes nodes
// mounting one claim have. Debian's glusterfs-server and glusterfs-client, as root.
//
// glusterd runs in the foreground as our child (-N: no systemd, no daemon), its state,
// run folder and socket in a temp folder; it and the brick listen on 127.0.0.1 only. The
// brick is a folder named with the machine's host name, which resolves to 127.0.0.1
// (gluster refuses the word "localhost" in a brick), and needs `force` (a brick on the
// root file system). close() undoes everything, each step on its own, so one that fails
// does not leave the rest: unmount both, stop and delete the volume, end glusterd.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually, repoRoot } from './fn.ts';
import { accepts } from './ports.ts';

const run = promisify(execFile);

/** glusterd's management port: the bricks it starts find it there (another port fails their start). */
const GLUSTERD_PORT = 24007;
const PACKAGES = ['glusterd:glusterfs-server', 'gluster:glusterfs-server', 'mount.glusterfs:glusterfs-client'];
const SBIN = '/usr/sbin:/sbin';

export interface GlusterVolume {
  name: string;
  /** The two FUSE mounts of the one volume: node A and node B. */
  mounts: [string, string];
  close(): Promise<void>;
}

const onPath = (command: string): boolean => spawnSync('sh', ['-c', `PATH="$PATH:${SBIN}" command -v ${command}`]).status === 0;

/** Why GlusterFS cannot run here, or undefined when it can; installs the packages when root and missing. */
export async function glusterUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'GlusterFS needs root (glusterd, a FUSE mount)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  if (!PACKAGES.every((pair) => onPath(pair.split(':')[0]!))) {
    spawnSync('bash', [path.join(repoRoot, 'scripts/ensure-debian-packages.sh'), ...PACKAGES], { stdio: 'inherit' });
    const missing = PACKAGES.filter((pair) => !onPath(pair.split(':')[0]!)).map((pair) => pair.split(':')[1]);
    if (missing.length > 0) return `not installed: ${[...new Set(missing)].join(', ')}`;
  }
  const host = os.hostname();
  const { address } = await lookup(host, { family: 4 }).catch(() => ({ address: 'nothing' }));
  if (address !== '127.0.0.1') return `the host name ${host} resolves to ${address}, not 127.0.0.1: gluster's traffic would leave loopback`;
  if (await accepts(GLUSTERD_PORT)) return `port ${GLUSTERD_PORT} is taken (a glusterd already running?): the test's own glusterd needs it`;
  return undefined;
}

/** Cleanups still owed if the test process exits without close(): a crash must not leave mounts behind. */
const owed = new Set<() => void>();
process.on('exit', () => {
  for (const undo of owed) undo();
});

export async function startGluster(): Promise<GlusterVolume> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-gluster-'));
  const dirs = { state: path.join(root, 'state'), run: path.join(root, 'run'), brick: path.join(root, 'brick'), a: path.join(root, 'node-a'), b: path.join(root, 'node-b') };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir);
  const socket = path.join(dirs.run, 'glusterd.socket');
  fs.writeFileSync(
    path.join(root, 'glusterd.vol'),
    [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${dirs.state}`,
      `    option run-directory ${dirs.run}`,
      `    option glusterd-sockfile ${socket}`,
      '    option transport-type socket',
      '    option transport.socket.bind-address 127.0.0.1',
      `    option transport.socket.listen-port ${GLUSTERD_PORT}`,
      '    option ping-timeout 0',
      '    option event-threads 1',
      'end-volume',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, PATH: `${process.env.PATH}:${SBIN}` };
  const glusterd: ChildProcess = spawn('glusterd', ['-N', '-f', path.join(root, 'glusterd.vol'), '-l', path.join(root, 'glusterd.log')], { env, stdio: 'ignore' });
  let exited = false;
  glusterd.once('exit', () => (exited = true));
  const name = `todo${process.pid}`;
  const gluster = (...args: string[]) => run('gluster', ['--mode=script', `--glusterd-sock=${socket}`, ...args], { env, timeout: 60_000 });
  const mounted: string[] = [];
  let brickSocket: string | undefined;

  const undoNow = (): void => {
    for (const mount of mounted) spawnSync('umount', ['-l', mount]);
    if (!exited) glusterd.kill('SIGKILL');
    for (const pid of brickPids(dirs.run)) killQuietly(pid);
  };
  owed.add(undoNow);

  const close = async (): Promise<void> => {
    const step = async (what: string, work: () => Promise<unknown>): Promise<void> => {
      await work().catch((error: Error) => process.stderr.write(`# gluster clean-up: ${what} failed: ${error.message.trim()}\n`));
    };
    for (const mount of mounted.splice(0)) await step(`umount ${mount}`, () => run('umount', [mount], { env }).catch(() => run('umount', ['-l', mount], { env })));
    await step('volume stop', () => gluster('volume', 'stop', name, 'force'));
    await step('volume delete', () => gluster('volume', 'delete', name));
    for (const pid of brickPids(dirs.run)) killQuietly(pid);
    if (!exited) {
      glusterd.kill('SIGTERM');
      await step('glusterd exit', () => eventually(() => exited, 5_000, 'glusterd exits on SIGTERM').catch((error) => (glusterd.kill('SIGKILL'), Promise.reject(error))));
    }
    // The brick's socket and log live outside our folder, where glusterd puts them.
    if (brickSocket) fs.rmSync(brickSocket, { force: true });
    fs.rmSync(path.join('/var/log/glusterfs/bricks', `${dirs.brick.slice(1).replaceAll('/', '-')}.log`), { force: true });
    owed.delete(undoNow);
    fs.rmSync(root, { recursive: true, force: true });
  };

  try {
    await eventually(() => fs.existsSync(socket) || exited, 15_000, 'glusterd opens its socket');
    if (exited) throw new Error(`glusterd exited at its start:\n${tail(path.join(root, 'glusterd.log'))}`);
    const host = os.hostname();
    await gluster('volume', 'create', name, `${host}:${dirs.brick}`, 'force');
    await gluster('volume', 'start', name);
    brickSocket = brickSocketOf(brickPids(dirs.run)[0]);
    for (const [node, mount] of [['a', dirs.a], ['b', dirs.b]] as const) {
      await run('mount', ['-t', 'glusterfs', '-o', `log-file=${path.join(root, `mount-${node}.log`)}`, `${host}:/${name}`, mount], { env, timeout: 30_000 });
      mounted.push(mount);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { name, mounts: [dirs.a, dirs.b], close };
}

/** The bricks glusterd started for our volume, by the pid files it keeps in our run folder. */
function brickPids(runDir: string): number[] {
  const vols = path.join(runDir, 'vols');
  if (!fs.existsSync(vols)) return [];
  return fs
    .readdirSync(vols, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.pid'))
    .map((file) => Number(fs.readFileSync(path.join(vols, file), 'utf8').trim()))
    // A pid file can outlive its process, and the number be reused: only a glusterfsd counts.
    .filter((pid) => Number.isInteger(pid) && pid > 0 && cmdline(pid).includes('glusterfsd'));
}

function cmdline(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function brickSocketOf(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  const args = cmdline(pid);
  const at = args.indexOf('-S');
  return at === -1 ? undefined : args[at + 1];
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}
