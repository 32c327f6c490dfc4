/** What the optimize action reports for a Dockerfile: one entry per problem found. */
export type Severity = 'error' | 'warning' | 'info';

export interface Suggestion {
  /** Stable kebab-case rule id, usable in `# stevedore-ignore` and `options.ignore`. */
  id: string;
  /** Equivalent hadolint (DLxxxx) and Trivy (DSxxx) ids, when one exists. */
  refs: string[];
  severity: Severity;
  title: string;
  /** 1-based line of the instruction concerned; null for findings about the whole build. */
  line: number | null;
  detail: string;
  /** A concrete change: the rewritten instruction(s) or the lines to add. */
  fix: string;
  /** Rough size the fix takes off the final image; null when it does not shrink it or we cannot tell. */
  estimated_savings_bytes: number | null;
}

export interface AnalyzeOptions {
  /** Rule ids to suppress everywhere. */
  ignore?: string[];
  /** Content of .dockerignore; null = the context has none; undefined = unknown (rules skipped). */
  dockerignore?: string | null;
}

export const MB = 1024 * 1024;
