// Answers in flight, from their request until their last byte has left the process. Node
// emits a response's 'finish' from the write callback of its last chunk
// (lib/_http_outgoing.js end()), which runs once libuv has handed that chunk to the kernel:
// then the process may exit and the kernel still delivers what it holds. Its 'close' follows
// 'finish', or comes alone when the connection goes first. An answer is in flight until 'close'.
//
// Node's own server.close() and closeIdleConnections() destroy every connection whose answer
// has been ended by the handler, bytes still queued or not (lib/_http_server.js: an "idle"
// connection whose _httpMessage is .finished): a big page to a slow reader was cut mid-way.
// Here a connection is closed only once its answers have left.
import type http from 'node:http';
import type net from 'node:net';
import { UnsentBodies, type Body } from './unsentBodies.js';
import { reportWarning } from './report.js';

/**
 * A body longer than this is written one slice at a time, the next once the previous has left
 * the process. Node refreshes a socket's timeout only when a whole write completes
 * (lib/internal/stream_base_commons.js onWriteComplete): sliced, "no progress" can be seen.
 */
export const SLICE_BYTES = 256 * 1024;
/**
 * A client that takes no slice of its answer for this long is dropped: nginx's send_timeout
 * rule ("between two successive write operations"), with the 30 s a client has to send its
 * request (REQUEST_TIMEOUT_MS) and of-watchdog's default write_timeout.
 */
export const SEND_IDLE_MS = 30_000;

export class InFlight {
  private readonly answers = new Set<http.ServerResponse>();
  /** Answers in flight per connection, for closing each connection once its answers have left. */
  private readonly perSocket = new Map<net.Socket, number>();
  private readonly sockets = new Set<net.Socket>();
  private readonly unsent: UnsentBodies;
  private stopped = false;
  private onEmpty: (() => void) | undefined;

  constructor(maxUnsentBytes: number) {
    this.unsent = new UnsentBodies(maxUnsentBytes, (dropped) =>
      reportWarning('answers dropped: their clients took none of an older version while newer ones were sent', { ...dropped, maxUnsentBytes }),
    );
  }

  /** Every connection the server accepts. */
  connection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Every request, as it arrives: its answer is in flight until it closes. */
  track(req: http.IncomingMessage, res: http.ServerResponse): void {
    // req.socket: a pipelined request's response has no socket until the one before it is done.
    const socket = req.socket;
    this.answers.add(res);
    this.perSocket.set(socket, (this.perSocket.get(socket) ?? 0) + 1);
    res.once('close', () => {
      this.answers.delete(res);
      const left = this.perSocket.get(socket)! - 1;
      if (left > 0) {
        this.perSocket.set(socket, left);
        return;
      }
      this.perSocket.delete(socket);
      if (this.stopped) socket.destroy();
      if (this.answers.size === 0) this.onEmpty?.();
    });
  }

  /** Ends the answer with its body (headers written), sliced when long; the body is held within the budget until it has left. */
  send(res: http.ServerResponse, body: Body): void {
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    this.unsent.hold(res, body, length);
    if (length <= SLICE_BYTES) {
      res.end(body);
      return;
    }
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    res.socket?.setTimeout(SEND_IDLE_MS);
    let offset = 0;
    const next = (): void => {
      while (!res.destroyed) {
        const slice = bytes.subarray(offset, offset + SLICE_BYTES);
        offset += slice.length;
        if (offset >= bytes.length) {
          res.end(slice);
          return;
        }
        if (!res.write(slice)) {
          res.once('drain', next);
          return;
        }
      }
    };
    next();
  }

  /**
   * No more requests will come (the server no longer listens): connections with nothing in
   * flight close now, the others as soon as their answers have left.
   */
  stop(): void {
    this.stopped = true;
    for (const socket of this.sockets) if (!this.perSocket.has(socket)) socket.destroy();
  }

  /** Resolves once no answer is in flight. */
  drained(): Promise<void> {
    if (this.answers.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.onEmpty = resolve));
  }

  /** The bytes of distinct bodies unfinished answers hold now. */
  unsentBytes(): number {
    return this.unsent.bytes();
  }
}
