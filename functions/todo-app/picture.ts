// What the bytes are: one strict decode by sharp before any picture counts,
// whether it came from the source or from the volume, and the resize for the page.
// Each decode is first priced from the picture's header (decodeCost.ts) and
// refused when over the decode budget; decodes run one at a time, so the budget
// holds for the whole process.
// sharp is imported on first use: a cold start with a verified image never loads it.
import { createHash } from 'node:crypto';
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { decodeCost, mebibytes } from './decodeCost.js';
import { PAGE_BACKGROUND, photoIdOf } from './page.js';

/**
 * 8192 x 8192: far above Picsum's sizes, and a bound on decode time and on what a
 * browser is asked to show. It bounds no memory: the decode budget does that.
 */
export const MAX_INPUT_PIXELS = 8192 * 8192;

/**
 * The decode every picture passes, and the one the resize does: a picture that
 * passed the check can never fail the resize. 'warning' is sharp's default and
 * the strictest level that still reads real photos: a JPEG whose scan data was
 * cut and closed with an end marker fails here, while 'truncated' let it pass.
 */
const DECODE: Readonly<SharpOptions> = Object.freeze({ limitInputPixels: MAX_INPUT_PIXELS, failOn: 'warning' });

/** Names the decode in a saved verdict: a release with other options decodes the picture again. */
const RULE = `sharp failOn=${DECODE.failOn} limitInputPixels=${MAX_INPUT_PIXELS}`;
/** Names the recipe of a resized copy in its verdict: a copy made by another recipe is made again. */
export const RESIZE_RULE = `${RULE} resize jpeg q82 mozjpeg flatten ${PAGE_BACKGROUND}`;

const MIME: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
};
const SERVED = new Set([...Object.values(MIME), 'image/avif']);

/** A picture that passed the decode; `sha256` names its bytes. */
export interface Picture {
  mime: string;
  width: number;
  height: number;
  sha256: string;
  /** The source's own name for the photo (Lorem Picsum's Picsum-ID), kept with the verdict for the page's credit. */
  photoId?: string | undefined;
}

export type PictureErrorCode = 'UNDECODABLE' | 'OVER_BUDGET' | 'DECODE_CRASHED';

export class PictureError extends Error {
  constructor(
    message: string,
    readonly code: PictureErrorCode = 'UNDECODABLE',
  ) {
    super(message);
  }
}

/** What a decode may spend: the bytes it reads and the memory it takes. */
export interface DecodeLimits {
  /** MAX_IMAGE_BYTES. */
  maxBytes: number;
  /** DECODE_BUDGET_BYTES, or what config.ts derived from the memory limit. */
  budgetBytes: number;
}

type SharpFactory = (input: Buffer, options: SharpOptions) => Sharp;
let factory: Promise<SharpFactory> | undefined;

function sharp(): Promise<SharpFactory> {
  factory ??= import('sharp').then((module) => {
    // A function that handles one picture every few minutes: libvips' operation cache (up to
    // 50 MB) is never hit again, so it only holds memory; and one thread per picture is plenty
    // for a background refresh (sharp already picks one on glibc; on Alpine's musl, the image's,
    // it would start one per core). Measured on glibc: the cache costs 0-5 MB of peak RSS here.
    module.default.cache(false);
    module.default.concurrency(1);
    return module.default as unknown as SharpFactory;
  });
  return factory;
}

/**
 * One decode at a time in this process: the budget is what one decode may take, and two
 * at once (a disk check and a refresh, say) would take twice. The next one waits its turn.
 */
let decoding: Promise<unknown> = Promise.resolve();

function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
  const turn = decoding.then(work, work);
  decoding = turn.catch(() => undefined);
  return turn;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sharp names AVIF "heif" and tells it from HEIC, which no browser shows, by its compression. */
function mimeOf(meta: Metadata): string | undefined {
  if (meta.format === 'heif') return meta.compression === 'av1' ? 'image/avif' : undefined;
  return meta.format === undefined ? undefined : MIME[meta.format];
}

/** The header, priced: refused before a pixel is decoded when the pass would take more than the budget. */
async function priced(bytes: Buffer, budgetBytes: number, target: number | undefined, what: string): Promise<Metadata> {
  const open = await sharp();
  const meta = await open(bytes, DECODE).metadata();
  const cost = decodeCost(meta, target);
  if (cost > budgetBytes) {
    const shape = `${meta.width}x${meta.pageHeight ?? meta.height} ${meta.format}${meta.isProgressive ? ' progressive/interlaced' : ''}, ${meta.channels} channels of ${meta.depth}`;
    throw new PictureError(`${what} it would take up to ${mebibytes(cost)} MiB (${shape}), over the decode budget of ${mebibytes(budgetBytes)} MiB (DECODE_BUDGET_BYTES)`, 'OVER_BUDGET');
  }
  return meta;
}

function undecodable(error: unknown): PictureError {
  if (error instanceof PictureError) return error;
  return new PictureError(`the bytes do not decode as a picture: ${(error as Error).message.split('\n')[0]}`);
}

/**
 * Decodes every pixel: a truncated, forged or oversized file fails here, never in the resize
 * or the browser. One sequential pass that squeezes each line into one pixel: libvips streams
 * it, and every line and every pixel is read. A pass into 1 x 1 would not do: libvips' shrink
 * drops the last (height mod factor) lines unread, and a JPEG cut short there passed.
 * `hash`: the bytes' sha256 when the caller has it already, not computed a second time.
 */
export async function inspect(bytes: Buffer, limits: DecodeLimits, hash?: string): Promise<Picture> {
  if (bytes.length > limits.maxBytes) throw new PictureError(`${bytes.length} bytes is over MAX_IMAGE_BYTES ${limits.maxBytes}`);
  return oneAtATime(async () => {
    try {
      const meta = await priced(bytes, limits.budgetBytes, undefined, 'decoding');
      const mime = mimeOf(meta);
      if (mime === undefined || !meta.width || !meta.height) {
        throw new PictureError(`not a supported picture (format ${meta.format ?? 'unknown'}${meta.compression ? ` ${meta.compression}` : ''})`);
      }
      const open = await sharp();
      await open(bytes, DECODE)
        .resize(1, meta.pageHeight ?? meta.height, { fit: 'fill' })
        .raw()
        .toBuffer();
      return { mime, width: meta.width, height: meta.height, sha256: hash ?? sha256(bytes) };
    } catch (error) {
      throw undecodable(error);
    }
  });
}

/**
 * A JPEG no wider than `width`, for the page; smaller pictures are not enlarged. Transparent
 * pixels are laid on the page's own background: a JPEG has no alpha, and libvips would make them black.
 */
export async function resize(bytes: Buffer, width: number, budgetBytes: number): Promise<Buffer> {
  return oneAtATime(async () => {
    await priced(bytes, budgetBytes, width, 'resizing').catch((error: unknown) => {
      throw undecodable(error);
    });
    const open = await sharp();
    return open(bytes, DECODE)
      .rotate()
      .resize({ width, withoutEnlargement: true })
      .flatten({ background: PAGE_BACKGROUND })
      .jpeg({ quality: 82, mozjpeg: true })
      .toBuffer();
  });
}

/** What is saved beside a picture once it passed the decode. */
export function verdictOf(picture: Picture, rule = RULE): Picture & { rule: string } {
  return { ...picture, rule };
}

/**
 * A verdict read back from the volume, when it speaks of exactly these bytes and
 * this decode. Its fields end up in the page (the data: URI's type), so each is
 * checked as strictly as sharp's own answer would have been.
 */
export function trustedVerdict(saved: unknown, hash: string, expected = RULE): Picture | undefined {
  if (typeof saved !== 'object' || saved === null) return undefined;
  const { rule, mime, width, height, sha256: named, photoId } = saved as Record<string, unknown>;
  const size = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;
  if (rule !== expected || named !== hash || typeof mime !== 'string' || !SERVED.has(mime)) return undefined;
  if (!size(width) || !size(height) || width * height > MAX_INPUT_PIXELS) return undefined;
  const id = photoIdOf(photoId);
  return { mime, width, height, sha256: hash, ...(id === undefined ? {} : { photoId: id }) };
}
