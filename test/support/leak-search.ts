import { randomBytes } from 'node:crypto';

/** A value no one could have typed by chance: a label and 96 random bits. */
export const plantable = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

/**
 * The ways a value can show up in stored or printed text: as itself, and base64 or
 * base64url encoded inside something longer (Docker's `auth`, a JWT, a Buffer in JSON).
 * Base64 of a value inside a longer string depends on where it starts modulo 3, so all
 * three alignments are listed, each without the edge characters that mix with its
 * neighbours.
 */
export function encodedForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set([value, bytes.toString('hex')]);
  for (const offset of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(offset), bytes]);
    for (const encoding of ['base64', 'base64url'] as const) {
      const encoded = shifted.toString(encoding).replace(/=+$/, '');
      forms.add(encoded.slice(offset ? 4 : 0, -4));
    }
  }
  return [...forms].filter((f) => f.length >= 16);
}

/** Which planted values (by label) occur, in any encoded form, in `haystack`. */
export function findPlanted(haystack: string, planted: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [label, value] of Object.entries(planted)) {
    const form = encodedForms(value).find((f) => haystack.includes(f));
    if (form !== undefined) found.push(`${label} (as ${form === value ? 'plain text' : `encoded ${form.slice(0, 10)}…`})`);
  }
  return found;
}
