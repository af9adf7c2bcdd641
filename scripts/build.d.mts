// The types of scripts/build.mjs (plain JavaScript: it runs before anything is built).
export declare const repoRoot: string;

export interface BuildOptions {
  /** The repository's root: the tsconfigs, the sources and node_modules/typescript. */
  root?: string;
  /** Where the image's layout goes (default <root>/dist). */
  outDir?: string;
  /** Gets one line before the compile and one after it; never called when nothing changed. */
  say?: (line: string) => void;
}

export interface BuildResult {
  /** Files written (sources and package.json files); 0 when skipped. */
  compiled: number;
  /** Nothing had changed since the last build into outDir. */
  skipped: boolean;
  ms: number;
}

export declare function build(options?: BuildOptions): BuildResult;
