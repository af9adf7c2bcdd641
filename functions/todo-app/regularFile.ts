// A path on a volume or a log disk can name anything: a FIFO whose open blocks
// until a writer comes, /dev/zero that never ends, a folder, a sparse file of
// terabytes. Files are opened without blocking (O_NONBLOCK), judged by what was
// opened (fstat of the descriptor: a swap of the path in between cannot fool
// the check), and refused unless they are regular files within their cap.
import { closeSync, constants, fstatSync, openSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

export class NotRegularFileError extends Error {
  readonly code = 'NOT_REGULAR_FILE';

  constructor(
    file: string,
    /** What the path names instead: "a FIFO", "a folder", ... */
    readonly kind: string,
  ) {
    super(`${file} is ${kind}, not a regular file`);
  }
}

export class FileTooLargeError extends Error {
  readonly code = 'TOO_LARGE';
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface RegularFile {
  bytes: Buffer;
  mtimeMs: number;
}

/** The whole file, or undefined when there is none; anything else is refused before a byte is read. */
export async function readRegular(file: string, maxBytes: number): Promise<RegularFile | undefined> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (handle === undefined) return undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new NotRegularFileError(file, kindOf(info));
    if (info.size > maxBytes) throw new FileTooLargeError(`${file} holds ${info.size} bytes, over the cap of ${maxBytes}`);
    // Exactly the size fstat saw: a file that grows while it is read cannot pass the cap.
    const bytes = Buffer.alloc(info.size);
    let length = 0;
    while (length < bytes.length) {
      const { bytesRead } = await handle.read(bytes, length, bytes.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return { bytes: bytes.subarray(0, length), mtimeMs: info.mtimeMs };
  } finally {
    await handle.close();
  }
}

/** A descriptor to append to, created when missing; a FIFO with no reader is refused, not waited for. */
export function openRegularForAppend(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENXIO: a FIFO or socket nobody reads; EISDIR: a folder. stat() names which without opening it.
    if (code === 'ENXIO' || code === 'EISDIR') throw new NotRegularFileError(file, kindOf(statSync(file)));
    throw error;
  }
  const info = fstatSync(fd);
  if (!info.isFile()) {
    closeSync(fd);
    throw new NotRegularFileError(file, kindOf(info));
  }
  return fd;
}
