// HTTP/1.1 over one raw socket, read strictly: each answer is framed by its own
// Content-Length or chunked coding (none for HEAD, 1xx, 204, 304), so an answer
// that declares the wrong length shows up as a time-out or as garbage where the
// next status line should be. For tests of keep-alive and framing.
import net from 'node:net';

export interface Answer {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The raw header block, status line included. */
  head: string;
  body: Buffer;
}

export interface Connection {
  /** Sends one request and reads exactly its answer. */
  send(request: string | Buffer, method?: string): Promise<Answer>;
  /** Bytes that arrived beyond the answers read so far. */
  leftover(): Buffer;
  closed(): boolean;
  close(): void;
}

export function connect(port: number, host = '127.0.0.1'): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let buffer = Buffer.alloc(0);
    let isClosed = false;
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      wake?.();
    });
    socket.on('close', () => {
      isClosed = true;
      wake?.();
    });
    socket.on('error', () => undefined);
    const need = async (predicate: () => boolean, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (isClosed) throw new Error(`connection closed; received so far: ${JSON.stringify(buffer.toString('latin1').slice(0, 300))}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no complete answer within ${timeoutMs} ms; received: ${JSON.stringify(buffer.toString('latin1').slice(0, 300))}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.min(left, 100));
        });
        wake = undefined;
      }
    };
    const take = (n: number): Buffer => {
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    };
    const read = async (method: string, timeoutMs: number): Promise<Answer> => {
      await need(() => buffer.indexOf('\r\n\r\n') !== -1, timeoutMs);
      const head = take(buffer.indexOf('\r\n\r\n') + 4).toString('latin1').slice(0, -4);
      const [statusLine, ...lines] = head.split('\r\n');
      const match = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine ?? '');
      if (!match) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`);
      const status = Number(match[1]);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      let body = Buffer.alloc(0);
      if (method !== 'HEAD' && status !== 204 && status !== 304 && status >= 200) {
        if (headers['transfer-encoding'] === 'chunked') {
          const parts: Buffer[] = [];
          for (;;) {
            await need(() => buffer.indexOf('\r\n') !== -1, timeoutMs);
            const size = parseInt(take(buffer.indexOf('\r\n') + 2).toString('latin1'), 16);
            await need(() => buffer.length >= size + 2, timeoutMs);
            parts.push(take(size));
            take(2);
            if (size === 0) break;
          }
          body = Buffer.concat(parts);
        } else if (headers['content-length'] !== undefined) {
          const length = Number(headers['content-length']);
          await need(() => buffer.length >= length, timeoutMs);
          body = Buffer.from(take(length));
        } else {
          throw new Error(`answer ${status} has neither Content-Length nor chunked coding`);
        }
      }
      return { status, headers, head, body };
    };
    socket.once('connect', () =>
      resolve({
        send: async (request, method) => {
          const verb = method ?? /^(\S+)/.exec(String(request))![1]!;
          socket.write(request);
          return read(verb, 15_000);
        },
        leftover: () => buffer,
        closed: () => isClosed,
        close: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}
