// The folder on the volume, in the seed app's own layout: `image.jpg` holds the
// original bytes, `.ts` the download time as ISO 8601. Writes are temp file,
// fsync, rename, so a reader in any replica sees a whole image or the old one.
// Reads trust nothing: whatever the folder holds, at worst it is ignored.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './config.js';
import type { Logger } from './log.js';
import { readRegular } from './regularFile.js';

export interface Stored {
  bytes: Buffer;
  fetchedAt: number;
}

/** A saved time before this is no time: no image of ours or of the seed app's is older. */
export const EARLIEST_STAMP = Date.UTC(2000, 0, 1);
/**
 * How far in the future a saved time may lie and still count: the clock of the
 * replica that wrote it may run ahead of ours. NTP keeps nodes well within a
 * second; 5 minutes (Kerberos' tolerance) excuses a badly kept node and costs
 * at most 5 minutes more of one picture. A later time is a typo or a broken
 * clock, and believing it would keep one picture until that date.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** `.ts` is one short line; anything longer is not ours. */
const STAMP_MAX_BYTES = 1024;
/** A saved verdict is a few fields of JSON. */
const VERDICT_MAX_BYTES = 4096;
/**
 * A lock whose holder stopped touching it this long ago is taken over (proper-lockfile's rule;
 * a holder touches it every LOCK_STALE_MS / 2), and so is one dated more than CLOCK_SKEW_MS ahead.
 */
export const LOCK_STALE_MS = 10_000;
const LOCK_POLL_MS = 200;
const TEMP = /^\..+\.tmp$/;
/** "Stale file handle": the file a cached name led to was replaced on another node. */
const ESTALE = os.constants.errno.ESTALE;
/** Temps of image.jpg and .ts: only the lock holder writes those two. */
const LOCKED_TEMP = /^\.\.?(image\.jpg|ts)\.\d+\.[0-9a-f]+\.tmp$/;
/** Variants and verdicts are written outside the lock; a younger temp of one may still be in use. */
const UNLOCKED_TEMP_GRACE_MS = 60_000;

/** A decode in progress touches its mark this often. */
const MARK_TOUCH_MS = 2_000;
/**
 * A mark untouched this long lost its process. Judged on the reader's clock, which may be up
 * to CLOCK_SKEW_MS ahead of the writer's: a live decode on a slow-clocked node stays alive.
 */
const MARK_STALE_MS = CLOCK_SKEW_MS + LOCK_STALE_MS;
/** A dead mark records that these bytes killed a decode; the refresh's cleanup drops it after a day. */
const DEAD_MARK_KEPT_MS = 24 * 3600_000;
/** A mark is a few fields of JSON. */
const MARK_MAX_BYTES = 1024;
const MARK = /^\.decoding-[0-9a-f]{32}\./;
/** Tells this process from an earlier one with the same pid (a restarted container has the same host name and often the same pid). */
const INSTANCE = randomBytes(8).toString('hex');

function markPrefix(sha256: string): string {
  return `.decoding-${sha256.slice(0, 32)}.`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process that wrote a decode mark is gone. On this host the pid says so at once
 * (our own pid in another life, or no such process); from another host (another node, or the
 * pod before a rollout) only the mark's age can: its process touched it every MARK_TOUCH_MS.
 */
function markIsDead(mark: unknown, mtimeMs: number, now: number): boolean {
  const { host, pid, instance } = (typeof mark === 'object' && mark !== null ? mark : {}) as Record<string, unknown>;
  if (host === os.hostname() && Number.isInteger(pid) && (pid as number) > 0) {
    if (pid === process.pid) return instance !== INSTANCE;
    if (!alive(pid as number)) return true;
  }
  return now - mtimeMs > MARK_STALE_MS || mtimeMs - now > CLOCK_SKEW_MS;
}

/** What prepare() did: created the missing levels (or found the folder), or where and why it could not. */
export type Preparation = { created: boolean } | { code: string; at: string; parentExists?: boolean };

/**
 * IMAGE_DIR as the start line reports it. writable: it was there; created: it was missing and
 * was made; read-only: a read-only file system (EROFS); not writable: no permission (EACCES,
 * EPERM) or no room; not creatable: a level of it could not be made (`at`, with `code`). In the
 * last three the function serves the image from memory only.
 */
export interface VolumeState {
  dir: string;
  state: 'writable' | 'created' | 'read-only' | 'not writable' | 'not creatable';
  code?: string;
  /** The folder the failure happened in. */
  at?: string;
  /** Who the function runs as: whom the folder must let write. */
  uid: number | undefined;
  gid: number | undefined;
}

/** What to do about a volume the function cannot write, in one sentence for the log line. */
export function volumeAdvice(volume: VolumeState): string | undefined {
  if (volume.state === 'writable' || volume.state === 'created') return undefined;
  switch (volume.code) {
    case 'EACCES':
    case 'EPERM':
      if (volume.uid === 0) return `${volume.at} refuses even root (${volume.code}): point IMAGE_DIR at a folder on a real volume`;
      return (
        `give ${volume.at} to UID ${volume.uid} (the UID this process runs as), e.g. chown -R ${volume.uid}:${volume.gid} on the node's folder ` +
        `(docs/deploy.md: chown 12000:12000 /tmp/kube), or, on a volume whose ownership Kubernetes manages, set the pod's securityContext.fsGroup: ${volume.gid}`
      );
    case 'EROFS':
      return `${volume.at} is on a read-only file system: mount the volume read-write at ${volume.dir} (on OpenFaaS, docs/deploy.md's Deployment patch mounts the claim there)`;
    case 'ENOTDIR':
      return `${volume.at} is a file, not a folder: point IMAGE_DIR at a folder`;
    case 'ENOSPC':
    case 'EDQUOT':
      return 'the volume is full: make room on it';
    default:
      return `check the volume mounted at ${volume.dir}`;
  }
}

export class LockTimeoutError extends Error {
  readonly code = 'LOCK_TIMEOUT';
}

export class Volume {
  readonly imagePath: string;
  readonly stampPath: string;
  readonly lockPath: string;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {
    this.imagePath = path.join(dir, 'image.jpg');
    this.stampPath = path.join(dir, '.ts');
    this.lockPath = path.join(dir, '.refresh.lock');
  }

  /**
   * Creates the folder when it is missing, one level at a time, and says how that went; never
   * throws. Not `mkdir(dir, { recursive: true })`: where mkdir answers ENOENT below a folder that
   * exists (/proc), Node's recursive mkdir climbs back up and retries for ever at 100 % CPU,
   * and where a level cannot be made it reports ENOENT for the folder asked for, not the real
   * cause (EROFS, EACCES) of the level that failed.
   */
  async prepare(): Promise<Preparation> {
    const missing: string[] = [];
    for (let at = path.resolve(this.dir); ; at = path.dirname(at)) {
      const info = await stat(at).catch((error: NodeJS.ErrnoException) => error);
      if (!(info instanceof Error)) {
        if (!info.isDirectory()) return { code: 'ENOTDIR', at };
        break;
      }
      // ENOTDIR: a level above is a file; found as the walk climbs to it.
      if (info.code !== 'ENOENT' && info.code !== 'ENOTDIR') return { code: info.code ?? 'UNKNOWN', at };
      if (path.dirname(at) === at) return { code: info.code, at };
      missing.unshift(at);
    }
    for (const folder of missing) {
      const failed = await mkdir(folder).then(
        () => undefined,
        (error: NodeJS.ErrnoException) => (error.code === 'EEXIST' ? undefined : (error.code ?? 'UNKNOWN')), // another replica made it
      );
      if (failed !== undefined) return { code: failed, at: folder, parentExists: true };
    }
    return { created: missing.length > 0 };
  }

  /**
   * What the function can do with its folder, found at start: creates it when missing, then
   * writes and removes a probe file, the one test that answers for root, ACLs and read-only
   * mounts alike. Throws a ConfigError for a path that can never hold a folder.
   */
  async state(): Promise<VolumeState> {
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    const prepared = await this.prepare();
    if ('code' in prepared) {
      if (prepared.code === 'ENOENT' && prepared.parentExists) {
        throw new ConfigError('IMAGE_DIR', `no folder can be made in ${path.dirname(prepared.at)} (mkdir ${prepared.at}: ENOENT; a virtual file system such as /proc)`, this.dir);
      }
      return { dir: this.dir, state: 'not creatable', code: prepared.code, at: prepared.at, uid, gid };
    }
    // The name of an orphaned temp file: a process killed right here leaves nothing removeOrphans keeps.
    const probe = path.join(this.dir, `.write-probe.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await (await open(probe, 'wx')).close();
      await unlink(probe);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN';
      return { dir: this.dir, state: code === 'EROFS' ? 'read-only' : 'not writable', code, at: this.dir, uid, gid };
    }
    return { dir: this.dir, state: prepared.created ? 'created' : 'writable', uid, gid };
  }

  /**
   * The download time of the saved image: `.ts` when it holds a sane time, else
   * the image's mtime when that is sane, else EARLIEST_STAMP (an image of unknown
   * age counts as the oldest: served if it decodes, replaced at once).
   * Undefined when there is no image.jpg.
   */
  async readStamp(): Promise<number | undefined> {
    return this.afterListing(() => this.stampNow());
  }

  /** The saved image; throws when image.jpg is not a regular file of at most `maxBytes`. */
  async readImage(maxBytes: number): Promise<Stored | undefined> {
    return this.afterListing(async () => {
      const fetchedAt = await this.stampNow();
      if (fetchedAt === undefined) return undefined;
      const saved = await readRegular(this.imagePath, maxBytes);
      return saved === undefined ? undefined : { bytes: saved.bytes, fetchedAt };
    });
  }

  private async stampNow(): Promise<number | undefined> {
    const now = Date.now();
    // An unreadable .ts falls back to the image's mtime, but a stale name is read again (afterListing).
    const saved = await readRegular(this.stampPath, STAMP_MAX_BYTES).catch((error: NodeJS.ErrnoException) => {
      if (error.errno === -ESTALE) throw error;
      return undefined;
    });
    const stamp = saneTime(saved === undefined ? NaN : parseStamp(saved.bytes.toString('utf8')), now);
    if (stamp !== undefined) return stamp;
    const info = await stat(this.imagePath).catch(() => undefined);
    return info === undefined ? undefined : (saneTime(info.mtimeMs, now) ?? EARLIEST_STAMP);
  }

  /**
   * A read by name that sees what another node renamed into place. A network file system's
   * client keeps a name's lookup for a while: GlusterFS' FUSE client for up to a second
   * (entry-timeout, attribute-timeout and md-cache-timeout are 1 s by default), so on one
   * node a read of .ts or image.jpg just after another node's rename still opens the old
   * file, or fails with ESTALE once the old file is gone (both seen in
   * test/integration/glusterfs.test.ts; the old time read under the lock meant a second
   * download). Listing the folder first renews every name in it (FUSE's READDIRPLUS answers
   * each entry with its current inode); after an ESTALE the listing and the read are tried
   * once more. NFS revalidates a name on open (close-to-open), and a local disk has nothing
   * to renew: there the listing of this small folder costs microseconds, at a start, once
   * a second while the image is stale, and under the lock.
   */
  private async afterListing<T>(read: () => Promise<T>): Promise<T> {
    await readdir(this.dir).catch(() => undefined);
    try {
      return await read();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).errno !== -ESTALE) throw error;
      await readdir(this.dir).catch(() => undefined);
      return read();
    }
  }

  /**
   * The image first, then the verdict of its decode, then its time: a crash in
   * between costs one extra decode or download, never a wrong age or a trusted
   * picture that was not decoded (a verdict names the bytes it speaks of).
   */
  async writeImage(bytes: Buffer, fetchedAt: number, verdict: object): Promise<void> {
    await this.writeAtomic(this.imagePath, bytes);
    await this.writeVerdict(path.basename(this.imagePath), verdict);
    await this.writeAtomic(this.stampPath, new Date(fetchedAt).toISOString());
    await this.syncDir();
  }

  /** What the decode said of the picture saved as `name` (image.jpg or a variant), as saved; undefined when unreadable. */
  async readVerdict(name: string): Promise<unknown> {
    const saved = await readRegular(this.verdictPath(name), VERDICT_MAX_BYTES).catch(() => undefined);
    try {
      return saved === undefined ? undefined : JSON.parse(saved.bytes.toString('utf8'));
    } catch {
      return undefined;
    }
  }

  async writeVerdict(name: string, verdict: object): Promise<void> {
    await this.writeAtomic(this.verdictPath(name), JSON.stringify(verdict));
  }

  /** The file name of the page's copy of an image, resized to `width`. */
  variantName(width: number, imageSha256: string): string {
    return `variant-${width}w-${imageSha256.slice(0, 16)}.jpg`;
  }

  async readVariant(name: string, maxBytes: number): Promise<Buffer | undefined> {
    return (await readRegular(path.join(this.dir, name), maxBytes))?.bytes;
  }

  /** Saves the resized copy with its verdict and drops the copies of earlier images. */
  async writeVariant(name: string, bytes: Buffer, verdict: object): Promise<void> {
    await this.writeAtomic(path.join(this.dir, name), bytes);
    await this.writeVerdict(name, verdict);
    for (const other of await readdir(this.dir)) {
      const variant = /^\.?(variant-.+\.jpg)(\.verified)?$/.exec(other)?.[1];
      if (variant !== undefined && variant !== name) await unlink(path.join(this.dir, other)).catch(() => undefined);
    }
  }

  /**
   * Marks a decode of the bytes named by `sha256` as in progress, durably, before it starts:
   * when the process dies in the decode (the OOM killer, a crash in libvips), the mark stays,
   * and no process decodes those bytes again (diedDecoding). Returns what ends the mark.
   */
  async markDecoding(sha256: string): Promise<() => Promise<void>> {
    const file = path.join(this.dir, `${markPrefix(sha256)}${process.pid}.${randomBytes(4).toString('hex')}`);
    await this.writeAtomic(file, JSON.stringify({ sha256, host: os.hostname(), pid: process.pid, instance: INSTANCE }));
    await this.syncDir();
    const touch = setInterval(() => {
      const now = new Date();
      void utimes(file, now, now).catch(() => undefined);
    }, MARK_TOUCH_MS);
    touch.unref();
    return async () => {
      clearInterval(touch);
      await unlink(file).catch(() => undefined);
    };
  }

  /** Whether a process died decoding the bytes named by `sha256`: its mark outlived it. */
  async diedDecoding(sha256: string): Promise<boolean> {
    const prefix = markPrefix(sha256);
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.startsWith(prefix)) continue;
      // Gone since the listing: that decode ended.
      const saved = await readRegular(path.join(this.dir, name), MARK_MAX_BYTES).catch(() => undefined);
      if (saved === undefined) continue;
      let mark: unknown;
      try {
        mark = JSON.parse(saved.bytes.toString('utf8'));
      } catch {
        mark = undefined;
      }
      if (markIsDead(mark, saved.mtimeMs, Date.now())) return true;
    }
    return false;
  }

  /**
   * Removes temp files left by a killed process. Called under the lock: nobody
   * else writes the image now, so every image temp is an orphan.
   */
  async removeOrphans(): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (MARK.test(name)) {
        const info = await stat(path.join(this.dir, name)).catch(() => undefined);
        if (info !== undefined && Date.now() - info.mtimeMs > DEAD_MARK_KEPT_MS) await unlink(path.join(this.dir, name)).then(() => removed++, () => undefined);
        continue;
      }
      if (!TEMP.test(name)) continue;
      const file = path.join(this.dir, name);
      if (!LOCKED_TEMP.test(name)) {
        const info = await stat(file).catch(() => undefined);
        if (info === undefined || Date.now() - info.mtimeMs < UNLOCKED_TEMP_GRACE_MS) continue;
      }
      await unlink(file).then(() => removed++, () => undefined);
    }
    return removed;
  }

  /**
   * Runs `work` holding the volume's refresh lock (proper-lockfile: a directory
   * made with mkdir, atomic on local disks and NFS alike). While another
   * process holds it, `settled()` is asked between tries (until `deadline`, in performance.now() time): when that process has
   * finished the work for us, we stop waiting and `work` never runs.
   */
  async withLock<T>(work: () => Promise<T>, settled: () => Promise<boolean>, deadline: number, signal: AbortSignal): Promise<T | undefined> {
    const lockfile = (await import('proper-lockfile')).default;
    for (;;) {
      let release: () => Promise<void>;
      await this.dropFutureLock();
      try {
        release = await lockfile.lock(this.imagePath, {
          lockfilePath: this.lockPath,
          realpath: false,
          stale: LOCK_STALE_MS,
          retries: 0,
          // The default throws from a timer and kills the process; a lost lock
          // only means another replica may download too, and renames stay atomic.
          onCompromised: (error) => this.log.warn({ reason: error.message }, 'refresh lock compromised; finishing anyway'),
        });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ELOCKED') {
          this.log.warn({ code, dir: this.dir }, 'cannot take the refresh lock (volume not writable?); refreshing without it');
          return work();
        }
        if (await settled()) return undefined;
        if (signal.aborted) throw new LockTimeoutError('stopped while waiting for the refresh lock');
        if (performance.now() > deadline) throw new LockTimeoutError('another replica held the refresh lock past the wait bound');
        await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
        continue;
      }
      try {
        return await work();
      } finally {
        await release().catch((error: Error) => this.log.warn({ reason: error.message }, 'refresh lock release failed'));
      }
    }
  }

  /**
   * proper-lockfile's isLockStale looks only at the past: a lock dated in the future (a holder
   * whose clock ran ahead and then died, a `touch -d 2099`) would stop every refresh until that
   * date. One dated more than CLOCK_SKEW_MS ahead is stale by the same rule as `.ts`: removed, if
   * its mtime is still the one judged (a process that took it over meanwhile set a new one), then
   * taken as usual. The window between the second look and the removal is the one proper-lockfile
   * has itself when it removes a lock stale in the past.
   */
  private async dropFutureLock(): Promise<void> {
    const judged = await stat(this.lockPath).catch(() => undefined);
    if (judged === undefined || judged.mtimeMs - Date.now() <= CLOCK_SKEW_MS) return;
    const again = await stat(this.lockPath).catch(() => undefined);
    if (again?.mtimeMs !== judged.mtimeMs) return;
    await rmdir(this.lockPath).catch(() => undefined);
    this.log.warn({ lockDatedAt: new Date(judged.mtimeMs).toISOString() }, 'refresh lock dated in the future: taken over');
  }

  private verdictPath(name: string): string {
    return path.join(this.dir, `.${name}.verified`);
  }

  private async writeAtomic(target: string, data: Buffer | string): Promise<void> {
    const temp = path.join(this.dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const file = await open(temp, 'w');
      try {
        await file.writeFile(data);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  private async syncDir(): Promise<void> {
    const dir = await open(this.dir, 'r').catch(() => undefined);
    if (dir === undefined) return;
    await dir.sync().catch(() => undefined);
    await dir.close();
  }
}

const ISO_8601 = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)?(Z|[+-]\d\d(?::?\d\d)?)?$/i;

/**
 * A saved time: ISO 8601 as we and the seed app write it, with an offset or
 * without one read as UTC (never as the local time of whichever node reads it),
 * or a bare number as epoch milliseconds. NaN for anything else, a date that
 * does not exist (February 30) included.
 */
export function parseStamp(text: string): number {
  const value = text.trim();
  if (/^\d{1,16}$/.test(value)) return Number(value);
  const match = ISO_8601.exec(value);
  if (match === null) return NaN;
  const [year, month, day, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part)));
  const ms = Number(`0.${match[7] ?? '0'}`) * 1000;
  const utc = Date.UTC(year!, month! - 1, day!, hour, minute, second, ms);
  const exact = new Date(utc);
  if (exact.getUTCMonth() !== month! - 1 || exact.getUTCDate() !== day || exact.getUTCHours() !== hour || exact.getUTCMinutes() !== minute) return NaN;
  const zone = match[8] ?? 'Z';
  if (zone.toUpperCase() === 'Z') return utc;
  const [, sign, zh, zm = '0'] = /^([+-])(\d\d):?(\d\d)?$/.exec(zone)!;
  if (Number(zh) > 14 || Number(zm) > 59) return NaN;
  return utc - (sign === '-' ? -1 : 1) * (Number(zh) * 60 + Number(zm)) * 60_000;
}

/** The time when it lies between EARLIEST_STAMP and a clock skew ahead of `now`; else undefined. */
export function saneTime(ms: number, now: number): number | undefined {
  return ms >= EARLIEST_STAMP && ms <= now + CLOCK_SKEW_MS ? ms : undefined;
}
