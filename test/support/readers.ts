// Clients that read an answer the way slow and broken ones do, on a raw socket:
// at a set pace, or not at all. They report what arrived and how the connection ended.
import net from 'node:net';

export interface Reading {
  /** Body bytes received so far (after the header block). */
  received(): number;
  /** The answer's Content-Length, once the header block has arrived. */
  length(): number | undefined;
  /** Resolves when the connection ends: 'end' (the server closed after sending), or an error code. */
  ended: Promise<string>;
  closed(): boolean;
  /** Reads everything from now on: a stalled client waking up (a paused socket sees no close until it reads). */
  wake(): void;
  destroy(): void;
}

/** Sends GET path and reads at most bytesPerSecond (0: never reads after the request). */
export function readAt(port: number, path: string, bytesPerSecond: number): Reading {
  const socket = net.connect(port, '127.0.0.1');
  let head = Buffer.alloc(0);
  let headDone = false;
  let length: number | undefined;
  let received = 0;
  let closed = false;
  socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: client\r\n\r\n`));
  // Paced on average: paused whenever it is ahead of bytesPerSecond since the start, checked every 20 ms.
  const began = Date.now();
  let rate = bytesPerSecond;
  let taken = 0;
  const ahead = (): boolean => taken > (rate * (Date.now() - began)) / 1000;
  const ticker = bytesPerSecond > 0 ? setInterval(() => !ahead() && socket.resume(), 20) : undefined;
  socket.on('data', (chunk: Buffer) => {
    if (!headDone) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headDone = true;
      length = Number(/content-length: *(\d+)/i.exec(head.subarray(0, end).toString('latin1'))?.[1]);
      received += head.length - end - 4;
    } else {
      received += chunk.length;
    }
    taken += chunk.length;
    if (ahead()) socket.pause();
  });
  if (bytesPerSecond === 0) socket.once('data', () => socket.pause());
  const ended = new Promise<string>((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('close', () => {
      closed = true;
      clearInterval(ticker);
      resolve('close');
    });
  });
  return {
    received: () => received,
    length: () => length,
    ended,
    closed: () => closed,
    wake: () => {
      rate = Infinity;
      socket.resume();
    },
    destroy: () => {
      clearInterval(ticker);
      socket.destroy();
    },
  };
}
