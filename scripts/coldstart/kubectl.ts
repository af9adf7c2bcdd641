// kubectl as the tool runs it: one command, its stdout, and on failure a
// ToolError that quotes kubectl's own last line (its summary, e.g. "The
// connection to the server ... was refused").
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ToolError } from './errors.ts';

const run = promisify(execFile);

export async function kubectl(bin: string, args: string[], hint: string): Promise<string> {
  try {
    const { stdout } = await run(bin, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr || (error as Error).message).trim().split('\n').at(-1);
    throw new ToolError(`${bin} ${args.join(' ')} failed: ${detail}${/[.?!]$/.test(detail ?? '') ? '' : '.'} ${hint}`, 'EKUBECTL');
  }
}
