/**
 * The logger the keeper writes to: pino's call shape (`logger.warn(obj, msg)`), so a pino
 * logger, a child of one (`app.log.child({ component: 'keeper' })`) or anything with these four
 * methods fits. Without one the keeper logs nothing; its events say everything.
 */
export interface KeeperLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const noop = () => undefined;
export const SILENT_LOGGER: KeeperLogger = { debug: noop, info: noop, warn: noop, error: noop };
