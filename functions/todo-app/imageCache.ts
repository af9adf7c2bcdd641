// The refresh algorithm. Memory holds the current page; within the TTL a request
// touches nothing else. Past the TTL the old page is served while one refresh
// runs (stale-while-revalidate, RFC 5861): one per process through a shared
// promise, one per volume through the lock, re-checked under the lock because
// another replica may have finished while we waited.
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { photoIdOf, renderPage, type Page } from './page.js';
import { verdictOf, type Picture } from './picture.js';
import { download, withoutCredentials, withoutCredentialsIn } from './source.js';
import { VerifiedPictures } from './verifiedPictures.js';
import { CLOCK_SKEW_MS, LOCK_STALE_MS, type Volume } from './volume.js';

const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/** While stale, another replica's refresh is looked for on disk at most this often. */
const DISK_CHECK_MS = 1_000;

export class ImageCache {
  private page: Page | undefined;
  private fetchedAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private checking: Promise<void> | undefined;
  private checkedAt = -Infinity;
  private failures = 0;
  /** performance.now() of the next try: a back-off and the disk look below are durations, which a step of the wall clock must not stretch. */
  private retryAt = 0;
  /** Why the saved image was last ignored: said once, not on every look at the disk. */
  private ignored: string | undefined;
  private readonly stop = new AbortController();
  private readonly pictures: VerifiedPictures;

  constructor(
    private readonly config: Config,
    private readonly volume: Volume,
    private readonly log: Logger,
  ) {
    this.pictures = new VerifiedPictures(volume, { maxBytes: config.maxImageBytes, budgetBytes: config.decodeBudgetBytes }, log);
  }

  /**
   * The page while it is fresh: the hot path, no I/O and no promise. A download time more than
   * the clock skew ahead of the clock (a clock stepped back, a replica's clock far ahead) is not
   * fresh: the same rule as for `.ts`, or the page would stay for the size of the step.
   */
  fresh(): Page | undefined {
    const age = Date.now() - this.fetchedAt;
    return age < this.config.ttlMs && age >= -CLOCK_SKEW_MS ? this.page : undefined;
  }

  /** The page to serve now; undefined means there is no image and none came within FETCH_TIMEOUT_MS. */
  async current(): Promise<Page | undefined> {
    await this.checkDisk();
    if (this.fresh()) return this.page;
    if (this.page) {
      void this.refresh();
      return this.page;
    }
    if (performance.now() < this.retryAt && !this.refreshing) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.fetchTimeoutMs)));
    await Promise.race([this.refresh(), bound]);
    clearTimeout(timer);
    return this.page;
  }

  /** Seconds until the source is tried again: the 503's Retry-After. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.retryAt - performance.now()) / 1000));
  }

  /**
   * Adopts what the volume holds when it is newer than memory: a restart, or
   * another replica's refresh. Whatever the volume holds, the answer is at worst
   * "no usable saved image", and a download follows.
   */
  async load(): Promise<boolean> {
    try {
      const stamp = await this.volume.readStamp();
      if (stamp === undefined || stamp <= this.fetchedAt) return this.fresh() !== undefined;
      const stored = await this.volume.readImage(this.config.maxImageBytes);
      if (stored === undefined) return false;
      const replacing = this.page !== undefined;
      await this.install(stored.bytes, await this.pictures.read('image.jpg', stored.bytes), stored.fetchedAt);
      // Another replica refreshed: no download of our own.
      if (replacing) this.log.info(this.age(), 'newer image on the volume: adopted');
      return this.fresh() !== undefined;
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      if (message !== this.ignored) this.log.warn({ code, reason: message }, 'saved image ignored; a download will replace it');
      this.ignored = message;
      return false;
    }
  }

  refresh(): Promise<void> {
    if (this.stop.signal.aborted || performance.now() < this.retryAt) return this.refreshing ?? Promise.resolve();
    if (this.refreshing === undefined) {
      if (this.page) this.log.info({ ...this.age(), dir: this.volume.dir }, 'image stale');
      else this.log.info({ ttlSeconds: this.config.ttlMs / 1000, dir: this.volume.dir }, 'image missing');
      this.refreshing = this.download().finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  /** The course's "Image age: 56.8, timeout: 600": the shown image's age and the TTL, in seconds. */
  age(): { fetchedAt: string | undefined; ageSeconds: number | undefined; ttlSeconds: number } {
    const known = Number.isFinite(this.fetchedAt);
    return {
      fetchedAt: known ? new Date(this.fetchedAt).toISOString() : undefined,
      ageSeconds: known ? Math.round((Date.now() - this.fetchedAt) / 100) / 10 : undefined,
      ttlSeconds: this.config.ttlMs / 1000,
    };
  }

  refreshInFlight(): boolean {
    return this.refreshing !== undefined;
  }

  /** SIGTERM: let the refresh in flight finish within the bound, then cancel it; the lock is released either way. */
  async close(boundMs: number): Promise<void> {
    const running = this.refreshing;
    if (running === undefined) return this.stop.abort();
    const timer = setTimeout(() => this.stop.abort(), boundMs);
    await running;
    clearTimeout(timer);
    this.stop.abort();
  }

  private checkDisk(): Promise<void> {
    if (this.fresh() || performance.now() - this.checkedAt < DISK_CHECK_MS) return this.checking ?? Promise.resolve();
    this.checkedAt = performance.now();
    this.checking ??= this.load().then(() => (this.checking = undefined));
    return this.checking;
  }

  private async download(): Promise<void> {
    const { config, volume, log } = this;
    try {
      await volume.prepare(); // the folder may have been deleted since the start
      await volume.withLock(
        async () => {
          if (await this.load()) return; // a replica finished while we waited for the lock
          await volume.removeOrphans();
          log.info({ url: withoutCredentials(config.imageUrl) }, 'download start');
          const got = await download(config.imageUrl, { timeoutMs: config.fetchTimeoutMs, maxBytes: config.maxImageBytes, signal: this.stop.signal });
          const photoId = photoIdOf(got.picsumId);
          const picture = { ...(await this.pictures.check(got.bytes)), ...(photoId === undefined ? {} : { photoId }) };
          const fetchedAt = Date.now();
          // The page first: bytes it cannot be built from are never saved over a good image.
          await this.install(got.bytes, picture, fetchedAt);
          await volume.writeImage(got.bytes, fetchedAt, verdictOf(picture)).catch((error: NodeJS.ErrnoException) =>
            log.error({ code: error.code, reason: error.message }, 'cannot save the image on the volume; serving it from memory'),
          );
          const { width, height } = picture;
          log.info({ bytes: got.bytes.length, ms: got.ms, picsumId: got.picsumId, width, height, url: withoutCredentials(got.finalUrl) }, 'download done');
        },
        () => this.load(),
        performance.now() + config.fetchTimeoutMs + LOCK_STALE_MS * 2,
        this.stop.signal,
      );
      this.failures = 0;
      this.retryAt = 0;
    } catch (error) {
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failures++) * (0.8 + Math.random() * 0.4);
      this.retryAt = performance.now() + backoff;
      const { code, message } = error as { code?: string; message: string };
      log.warn({ code, reason: withoutCredentialsIn(message), retryInMs: Math.round(backoff), keeping: this.page ? 'the current image' : 'nothing' }, 'refresh failed');
    }
  }

  /** Builds the page once per image; with IMAGE_WIDTH the resized copy is made once and kept on the volume. */
  private async install(original: Buffer, picture: Picture, fetchedAt: number): Promise<void> {
    const width = this.config.imageWidth;
    const image = width === undefined ? original : await this.pictures.resized(original, picture, width);
    const mime = width === undefined ? picture.mime : 'image/jpeg';
    this.page = renderPage({ image, mime, fetchedAt, ttlMs: this.config.ttlMs, source: this.config.imageUrl, photoId: picture.photoId, caching: this.config.caching });
    this.fetchedAt = fetchedAt;
  }
}
