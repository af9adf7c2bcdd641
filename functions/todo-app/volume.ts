// The folder on the volume, in the seed app's own layout: `image.jpg` holds the
// original bytes, `.ts` the download time as ISO 8601. Writes are temp file,
// fsync, rename, so a reader in any replica sees a whole image or the old one.
// Reads trust nothing: whatever the folder holds, at worst it is ignored.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
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
/** A lock whose holder stopped touching it this long ago is taken over (proper-lockfile's rule). */
export const LOCK_STALE_MS = 10_000;
const LOCK_POLL_MS = 200;
const TEMP = /^\..+\.tmp$/;
/** Temps of image.jpg and .ts: only the lock holder writes those two. */
const LOCKED_TEMP = /^\.\.?(image\.jpg|ts)\.\d+\.[0-9a-f]+\.tmp$/;
/** Variants and verdicts are written outside the lock; a younger temp of one may still be in use. */
const UNLOCKED_TEMP_GRACE_MS = 60_000;

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
    const now = Date.now();
    const saved = await readRegular(this.stampPath, STAMP_MAX_BYTES).catch(() => undefined);
    const stamp = saneTime(saved === undefined ? NaN : parseStamp(saved.bytes.toString('utf8')), now);
    if (stamp !== undefined) return stamp;
    const info = await stat(this.imagePath).catch(() => undefined);
    return info === undefined ? undefined : (saneTime(info.mtimeMs, now) ?? EARLIEST_STAMP);
  }

  /** The saved image; throws when image.jpg is not a regular file of at most `maxBytes`. */
  async readImage(maxBytes: number): Promise<Stored | undefined> {
    const fetchedAt = await this.readStamp();
    if (fetchedAt === undefined) return undefined;
    const saved = await readRegular(this.imagePath, maxBytes);
    return saved === undefined ? undefined : { bytes: saved.bytes, fetchedAt };
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
   * Removes temp files left by a killed process. Called under the lock: nobody
   * else writes the image now, so every image temp is an orphan.
   */
  async removeOrphans(): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
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
   * process holds it, `settled()` is asked between tries: when that process has
   * finished the work for us, we stop waiting and `work` never runs.
   */
  async withLock<T>(work: () => Promise<T>, settled: () => Promise<boolean>, deadline: number, signal: AbortSignal): Promise<T | undefined> {
    const lockfile = (await import('proper-lockfile')).default;
    for (;;) {
      let release: () => Promise<void>;
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
        if (Date.now() > deadline) throw new LockTimeoutError('another replica held the refresh lock past the wait bound');
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
