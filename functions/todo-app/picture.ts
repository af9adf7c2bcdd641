// What the bytes are: one strict decode by sharp before any picture counts,
// whether it came from the source or from the volume, and the resize for the page.
// sharp is imported on first use: a cold start with a verified image never loads it.
import { createHash } from 'node:crypto';
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { photoIdOf } from './page.js';

/** 8192 x 8192: far above Picsum's sizes, far below what could exhaust memory. */
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


export class PictureError extends Error {
  readonly code = 'UNDECODABLE';
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

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sharp names AVIF "heif" and tells it from HEIC, which no browser shows, by its compression. */
function mimeOf(meta: Metadata): string | undefined {
  if (meta.format === 'heif') return meta.compression === 'av1' ? 'image/avif' : undefined;
  return meta.format === undefined ? undefined : MIME[meta.format];
}

/** Decodes every pixel: a truncated, forged or oversized file fails here, never in the resize or the browser. */
export async function inspect(bytes: Buffer, maxBytes: number): Promise<Picture> {
  if (bytes.length > maxBytes) throw new PictureError(`${bytes.length} bytes is over MAX_IMAGE_BYTES ${maxBytes}`);
  const open = await sharp();
  try {
    const image = open(bytes, DECODE);
    const meta = await image.metadata();
    const mime = mimeOf(meta);
    if (mime === undefined || !meta.width || !meta.height) {
      throw new PictureError(`not a supported picture (format ${meta.format ?? 'unknown'}${meta.compression ? ` ${meta.compression}` : ''})`);
    }
    await image.stats();
    return { mime, width: meta.width, height: meta.height, sha256: sha256(bytes) };
  } catch (error) {
    if (error instanceof PictureError) throw error;
    throw new PictureError(`the bytes do not decode as a picture: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** A JPEG no wider than `width`, for the page; smaller pictures are not enlarged. */
export async function resize(bytes: Buffer, width: number): Promise<Buffer> {
  const open = await sharp();
  return open(bytes, DECODE).rotate().resize({ width, withoutEnlargement: true }).jpeg({ quality: 82, mozjpeg: true }).toBuffer();
}

/** What is saved beside a picture once it passed the decode. */
export function verdictOf(picture: Picture): Picture & { rule: string } {
  return { ...picture, rule: RULE };
}

/**
 * A verdict read back from the volume, when it speaks of exactly these bytes and
 * this decode. Its fields end up in the page (the data: URI's type), so each is
 * checked as strictly as sharp's own answer would have been.
 */
export function trustedVerdict(saved: unknown, hash: string): Picture | undefined {
  if (typeof saved !== 'object' || saved === null) return undefined;
  const { rule, mime, width, height, sha256: named, photoId } = saved as Record<string, unknown>;
  const size = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;
  if (rule !== RULE || named !== hash || typeof mime !== 'string' || !SERVED.has(mime)) return undefined;
  if (!size(width) || !size(height) || width * height > MAX_INPUT_PIXELS) return undefined;
  const id = photoIdOf(photoId);
  return { mime, width, height, sha256: hash, ...(id === undefined ? {} : { photoId: id }) };
}
