// Progress goes to stderr so `--json` keeps stdout to one JSON object. Waiting
// loops call tick() often; a line is written when the state changes or every
// few seconds, so a log in CI stays short and a terminal never looks stuck.
export interface Progress {
  say(line: string): void;
  /** A waiting state: calls with the same `state` print `line` at most every `everyMs`. */
  tick(state: string, line: string, everyMs?: number): void;
}

export function progressOn(stream: NodeJS.WritableStream, quiet = false): Progress {
  let lastState = '';
  let lastAt = 0;
  const started = Date.now();
  const write = (line: string): void => {
    if (!quiet) stream.write(`[coldstart ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  };
  return {
    say(line) {
      lastState = '';
      write(line);
    },
    tick(state, line, everyMs = 5000) {
      const now = Date.now();
      if (state !== lastState || now - lastAt >= everyMs) {
        lastState = state;
        lastAt = now;
        write(line);
      }
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
