/** ARG/ENV values in scope: null means declared without a value (set only at build time). */
export type Vars = ReadonlyMap<string, string | null>;

const REF = /\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Docker's variable substitution ($X, ${X}, ${X:-default}, ${X:+alt}). `complete` is
 * false when a variable had no known value: the result is then only a guess, and rules
 * must not report on it (a base image tag that comes from a build arg is not "missing").
 */
export function expand(input: string, vars: Vars): { value: string; complete: boolean } {
  let complete = true;
  const value = input.replace(
    REF,
    (all, braced: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
      if (all === '\\$') return '$';
      const name = (braced ?? bare)!;
      const v = vars.get(name);
      const set = v !== undefined && v !== null;
      if (op === ':-' || op === '-') {
        if (set && (op === '-' || v !== '')) return v;
        return word ?? '';
      }
      if (op === ':+' || op === '+') return set ? (word ?? '') : '';
      if (!set) {
        complete = false;
        return '';
      }
      return v;
    },
  );
  return { value, complete };
}
