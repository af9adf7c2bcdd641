// What the bytes are: decoded by sharp before they count, resized for the page.
// sharp is imported on first use: a cold start with a cached image never loads it.
import type { Sharp, SharpOptions } from 'sharp';

/** 8192 x 8192: far above Picsum's sizes, far below what could exhaust memory. */
export const MAX_INPUT_PIXELS = 8192 * 8192;

const MIME: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
};

export interface PictureInfo {
  mime: string;
  width: number;
  height: number;
}

export class PictureError extends Error {
  readonly code = 'UNDECODABLE';
}

type SharpFactory = (input: Buffer, options: SharpOptions) => Sharp;
let factory: Promise<SharpFactory> | undefined;

function sharp(): Promise<SharpFactory> {
  factory ??= import('sharp').then((module) => module.default as unknown as SharpFactory);
  return factory;
}

/** Decodes every pixel: a truncated or forged file fails here, not in the browser. */
export async function inspect(bytes: Buffer): Promise<PictureInfo> {
  const open = await sharp();
  try {
    const image = open(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'truncated' });
    const meta = await image.metadata();
    const mime = meta.format === undefined ? undefined : MIME[meta.format];
    if (mime === undefined || !meta.width || !meta.height) {
      throw new PictureError(`not a supported picture (format ${meta.format ?? 'unknown'})`);
    }
    await image.stats();
    return { mime, width: meta.width, height: meta.height };
  } catch (error) {
    if (error instanceof PictureError) throw error;
    throw new PictureError(`the bytes do not decode as a picture: ${(error as Error).message}`);
  }
}

/** A JPEG no wider than `width`, for the page; smaller pictures are not enlarged. */
export async function resize(bytes: Buffer, width: number): Promise<Buffer> {
  const open = await sharp();
  return open(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
    .rotate()
    .resize({ width, withoutEnlargement: true })
    .jpeg({ quality: 82, mozjpeg: true })
    .toBuffer();
}

/** The media type from the first bytes: enough to label a file we saved ourselves, no decoder needed. */
export function sniffMime(bytes: Buffer): string | undefined {
  if (bytes.length < 12) return undefined;
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.readUInt32BE(0) === 0x89504e47) return 'image/png';
  if (bytes.toString('latin1', 0, 4) === 'GIF8') return 'image/gif';
  if (bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  if (bytes.toString('latin1', 4, 12) === 'ftypavif') return 'image/avif';
  return undefined;
}
