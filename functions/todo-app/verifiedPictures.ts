// A picture read back from the volume counts only once it passed the strict
// decode (picture.ts), like a download. The verdict is saved beside it, naming
// the bytes by their sha256, by the process that decoded them: a later cold
// start trusts verified bytes without loading sharp (about 45 ms of its time),
// and bytes with no verdict of their own are decoded before they are served.
import type { Logger } from './log.js';
import { inspect, resize, sha256, trustedVerdict, verdictOf, type Picture } from './picture.js';
import type { Volume } from './volume.js';

export class VerifiedPictures {
  /** Bytes that failed the decode: not decoded again while they stay on the volume. */
  private refused: { sha256: string; error: Error } | undefined;

  constructor(
    private readonly volume: Volume,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  /** What the bytes saved as `name` are; throws a PictureError when they do not decode. */
  async read(name: string, bytes: Buffer): Promise<Picture> {
    const hash = sha256(bytes);
    const known = trustedVerdict(await this.volume.readVerdict(name), hash);
    if (known !== undefined) return known;
    if (this.refused?.sha256 === hash) throw this.refused.error;
    const picture = await inspect(bytes, this.maxBytes).catch((error: Error) => {
      this.refused = { sha256: hash, error };
      throw error;
    });
    await this.volume.writeVerdict(name, verdictOf(picture)).catch((error: Error) => this.log.warn({ reason: error.message }, 'cannot save the verdict of the decode'));
    return picture;
  }

  /** The page's copy of a picture, no wider than `width`: made once, kept on the volume with its own verdict. */
  async resized(original: Buffer, picture: Picture, width: number): Promise<Buffer> {
    const name = this.volume.variantName(width, picture.sha256);
    const saved = await this.volume.readVariant(name, this.maxBytes).catch(() => undefined);
    if (saved !== undefined && (await this.read(name, saved).catch(() => undefined))) return saved;
    const copy = await resize(original, width);
    const verdict = verdictOf(await inspect(copy, this.maxBytes));
    await this.volume.writeVariant(name, copy, verdict).catch((error: Error) => this.log.warn({ reason: error.message }, 'cannot save the resized image'));
    return copy;
  }
}
