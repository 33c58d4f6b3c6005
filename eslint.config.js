import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Node's globals for the plain .mjs scripts (bench/, scripts/, test fixtures); TypeScript checks the rest.
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'performance',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'fetch',
    'URL',
    'Buffer',
    'AbortController',
    'AbortSignal',
  ].map((g) => [g, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'src/gen/', 'clients/python/', 'clients/typescript/dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: nodeGlobals },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
);
