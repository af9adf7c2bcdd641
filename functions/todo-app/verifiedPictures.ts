// A picture read back from the volume counts only once it passed the strict
// decode (picture.ts), like a download. The verdict is saved beside it, naming
// the bytes by their sha256, by the process that decoded them: a later cold
// start trusts verified bytes without loading sharp (about 45 ms of its time),
// and bytes with no verdict of their own are decoded before they are served.
//
// Every decode runs under a mark on the volume (volume.markDecoding): bytes
// whose decode once took a process down are never decoded again, by any
// process, so a picture that kills the decode cannot kill every start after it.
import type { Logger } from './log.js';
import { inspect, PictureError, resize, RESIZE_RULE, sha256, trustedVerdict, verdictOf, type DecodeLimits, type Picture } from './picture.js';
import type { Volume } from './volume.js';

export class VerifiedPictures {
  /** Bytes that failed the decode: not decoded again while they stay on the volume. */
  private refused: { sha256: string; error: Error } | undefined;

  constructor(
    private readonly volume: Volume,
    private readonly limits: DecodeLimits,
    private readonly log: Logger,
  ) {}

  /** What a download's bytes are; throws a PictureError when they do not decode, or must not be. */
  async check(bytes: Buffer): Promise<Picture> {
    const hash = sha256(bytes);
    return this.marked(hash, () => inspect(bytes, this.limits, hash));
  }

  /** What the bytes saved as `name` are; throws a PictureError when they do not decode. */
  async read(name: string, bytes: Buffer): Promise<Picture> {
    const hash = sha256(bytes);
    const known = trustedVerdict(await this.volume.readVerdict(name), hash);
    if (known !== undefined) return known;
    if (this.refused?.sha256 === hash) throw this.refused.error;
    const picture = await this.marked(hash, () => inspect(bytes, this.limits, hash)).catch((error: Error) => {
      this.refused = { sha256: hash, error };
      throw error;
    });
    await this.volume.writeVerdict(name, verdictOf(picture)).catch((error: Error) => this.log.warn({ reason: error.message }, 'cannot save the verdict of the decode'));
    return picture;
  }

  /**
   * The page's copy of a picture, no wider than `width`: made once, kept on the volume with
   * its own verdict. A copy whose verdict names another recipe (or none) is made again.
   */
  async resized(original: Buffer, picture: Picture, width: number): Promise<Buffer> {
    const name = this.volume.variantName(width, picture.sha256);
    const saved = await this.volume.readVariant(name, this.limits.maxBytes).catch(() => undefined);
    if (saved !== undefined && trustedVerdict(await this.volume.readVerdict(name), sha256(saved), RESIZE_RULE)) return saved;
    const copy = await this.marked(picture.sha256, () => resize(original, width, this.limits.budgetBytes));
    const verdict = verdictOf(await inspect(copy, this.limits), RESIZE_RULE);
    await this.volume.writeVariant(name, copy, verdict).catch((error: Error) => this.log.warn({ reason: error.message }, 'cannot save the resized image'));
    return copy;
  }

  /** Runs a decode of the bytes named by `hash` under a mark on the volume; refuses bytes whose decode killed a process. */
  private async marked<T>(hash: string, decode: () => Promise<T>): Promise<T> {
    if (await this.volume.diedDecoding(hash)) {
      throw new PictureError('a process died while decoding these very bytes (its mark is on the volume): they are never decoded again', 'DECODE_CRASHED');
    }
    // A volume we cannot write cannot keep a mark; the decode goes on without one.
    const unmark = await this.volume.markDecoding(hash).catch(() => undefined);
    this.log.debug({ sha256: hash, marked: unmark !== undefined }, 'decode start');
    try {
      return await decode();
    } finally {
      await unmark?.();
    }
  }
}
