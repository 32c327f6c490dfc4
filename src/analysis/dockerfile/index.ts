export { analyzeDockerfile, listRules } from './analyze.js';
export type { AnalyzeOptions, Severity, Suggestion } from './types.js';
