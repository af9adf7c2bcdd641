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
 * A client that takes nothing of its answer is dropped SEND_IDLE_MS to twice that after the last
 * byte it took: a socket's timeout fires SEND_IDLE_MS after its last read or completed write, and
 * Node lets it pass once more when the pending write has moved since (lib/net.js _onTimeout,
 * comparing libuv's writeQueueSize). The write moves when the kernel's send buffer has room for
 * it, in steps of up to half that buffer (2 MiB of Linux's default 4 MiB tcp_wmem): past what the
 * kernel holds, a client must read about 100 KB/s to keep its connection. Behind of-watchdog an
 * answer has write_timeout (25 s in the image) in all anyway.
 */
export const SEND_IDLE_MS = 20_000;

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

  /** Ends the answer with its body (headers written); the body is held within the budget until it has left. */
  send(res: http.ServerResponse, body: Body, bytes: number): void {
    this.unsent.hold(res, body, bytes);
    // Node's default on a socket's timeout, with no 'timeout' listener on the request, the
    // response or the server, is to destroy it (lib/_http_server.js socketOnTimeout); after the
    // answer, the keep-alive timeout replaces this one (resOnFinish).
    res.socket?.setTimeout(SEND_IDLE_MS);
    res.end(body);
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
}
