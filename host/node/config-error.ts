/**
 * A setting that cannot be used: start-up stops and names the field (a config file key path, an
 * environment variable or a command-line option) and the reason. `arbormq` exits with code 2.
 */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'ConfigError';
  }
}
