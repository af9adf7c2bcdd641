// Errors the tool explains to its user. `code` lets a caller (and the tests)
// switch on the cause; `exitCode` is what the process ends with.
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** The platform would not scale the function to zero: nothing cold to measure. */
export const EXIT_NO_SCALE_TO_ZERO = 3;

export class ToolError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}
