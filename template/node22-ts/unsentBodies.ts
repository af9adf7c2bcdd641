// The memory that clients who do not read can pin. An answer's body stays in memory until its
// last byte has left the process; a client that reads nothing keeps it there. When the
// function changes its body now and then (a new page version), each such client pins another
// version. This module keeps the distinct bodies held by unfinished answers within a budget:
// a body counts once however many answers send it (the current page, sent to a thousand
// clients, is one body), and past the budget the answers holding the least recently sent body
// are dropped, oldest version first, never the one being sent now.
import type http from 'node:http';

/** MAX_UNSENT_BYTES: the budget's default, 32 MiB (an eighth of stack.yml's 256 MiB limit). */
export const DEFAULT_MAX_UNSENT_BYTES = 32 * 1024 * 1024;

export type Body = string | Buffer;

interface Held {
  bytes: number;
  answers: Set<http.ServerResponse>;
}

export interface Dropped {
  answers: number;
  bytes: number;
}

export class UnsentBodies {
  /** Least recently sent first: a Map keeps insertion order, and each send re-inserts its body. */
  private readonly held = new Map<Body, Held>();
  private total = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onDrop: (dropped: Dropped) => void,
  ) {}

  /** The answer holds the body until it closes (its last byte left, or its connection went). */
  hold(res: http.ServerResponse, body: Body, bytes: number): void {
    let entry = this.held.get(body);
    if (entry === undefined) {
      entry = { bytes, answers: new Set() };
      this.total += bytes;
    } else {
      this.held.delete(body);
    }
    this.held.set(body, entry);
    entry.answers.add(res);
    const held = entry;
    res.once('close', () => this.release(body, held, res));
    while (this.total > this.maxBytes) {
      const [oldest, victim] = this.held.entries().next().value!;
      if (oldest === body) break;
      this.forget(oldest, victim);
      // Destroying closes the connection: the client sees an answer shorter than its
      // Content-Length, an error, never a page that looks whole.
      for (const answer of victim.answers) answer.destroy();
      this.onDrop({ answers: victim.answers.size, bytes: victim.bytes });
    }
  }

  private release(body: Body, entry: Held, res: http.ServerResponse): void {
    entry.answers.delete(res);
    if (entry.answers.size === 0 && this.held.get(body) === entry) this.forget(body, entry);
  }

  private forget(body: Body, entry: Held): void {
    this.held.delete(body);
    this.total -= entry.bytes;
  }
}
