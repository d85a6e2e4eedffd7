// ESLint: the recommended rules, plus the rules the Temporal TypeScript samples keep for code that
// runs in the workflow sandbox, where a Node built-in or an activity's implementation would break
// determinism or the bundle.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The workflow bundler provides assert, and only assert (as the samples allow it).
const ALLOWED_NODE_BUILTINS = new Set(['assert']);
const restrictedBuiltins = [...new Set(builtinModules.map((name) => name.replace(/^node:/, '')))]
  .filter((name) => !ALLOWED_NODE_BUILTINS.has(name))
  .flatMap((name) => [name, `node:${name}`]);

export default defineConfig(
  { ignores: ['node_modules', '.stack'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An un-awaited activity, workflow API, stream or client call fails silently, or not at all.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test runs these itself and reports their failures; awaiting them is not needed.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'suite', 'test'] }] },
      ],
      // A variable assigned once, late, but read earlier by a closure (a query handler reading the
      // restore's RTO clock before the restore starts) must stay a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // As in the samples: a leading underscore marks a name left unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Code that runs in the workflow sandbox: workflows and the contracts they share with activities.
    files: ['workflows/**/*.ts', 'contracts/**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: restrictedBuiltins.map((name) => ({ name, message: 'workflow code runs in the Temporal sandbox: no Node built-ins' })),
          patterns: [
            {
              group: ['**/activities', '**/activities/**'],
              allowTypeImports: true,
              message: 'workflows call activities through proxyActivities: import their types only (import type)',
            },
          ],
        },
      ],
    },
  },
);
