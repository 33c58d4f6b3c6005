/**
 * A bad flag, env var, option value or task file; the message names it and says what is valid.
 * The CLIs exit with 2 on it (a usage or configuration error), 1 on any other failure.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
