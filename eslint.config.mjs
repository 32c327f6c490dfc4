// @ts-check
// ESLint: the recommended rules of ESLint and typescript-eslint, type-aware (the project
// service reads tsconfig.json, so src/, test/ and bench/ are linted with their real types).
// Formatting is Prettier's alone (`npm run format`); eslint-config-prettier turns off
// every rule that would argue with it. A rule turned off or softened here says why.
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const UNSAFE_ANY = [
  '@typescript-eslint/no-explicit-any',
  '@typescript-eslint/no-unsafe-argument',
  '@typescript-eslint/no-unsafe-assignment',
  '@typescript-eslint/no-unsafe-call',
  '@typescript-eslint/no-unsafe-member-access',
  '@typescript-eslint/no-unsafe-return',
];
/** @param {string[]} rules */
const off = (rules) => Object.fromEntries(rules.map((r) => [r, 'off']));

export default defineConfig(
  {
    ignores: ['dist/', 'node_modules/', 'test/fixtures/', 'test/trivy-db/', '.stevedore/', '.npm-cache/'],
  },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // An `async` function that does not await still turns a synchronous throw into a
      // rejection and satisfies a Promise-returning contract; that is why it is async.
      '@typescript-eslint/require-await': 'off',
      // Input validation here rejects control characters on purpose (`/[\x00-\x1f]/`).
      'no-control-regex': 'off',
      // `_name` marks a binding kept for its shape (`const { authorization: _dropped, ...rest }`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
    },
  },
  {
    // The CLI prints the server's JSON answers, read as loose records: the server's
    // schemas (openapi.yaml) are their type check, not a second copy of every type here.
    files: ['src/cli/client/**/*.ts'],
    rules: {
      ...off(UNSAFE_ANY),
      // Event data fields are JSON scalars printed as text; String() of them is the intent.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Tests and benchmarks read JSON bodies (fetch, supertest, Redis dumps) as `any` and
    // assert on them field by field: the assertions are the type check.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      ...off(UNSAFE_ANY),
      // Tests save a prototype's method to spy on it and put it back afterwards.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
  // After eslint-config-prettier, which turns max-len off: Prettier cannot wrap strings and comments.
  { rules: { 'max-len': ['error', { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }] } },
);
