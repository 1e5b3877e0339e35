import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

/**
 * What `createCallkeeper({ logger })` takes: `false` (nothing is written), pino's options with an
 * optional `stream` (as Fastify's `logger` option took them; level `info` unless given), or a
 * pino logger of one's own, so callkeeper's lines join an application's log.
 */
export type LoggerConfig = boolean | (LoggerOptions & { stream?: DestinationStream | undefined }) | Logger;

function isLogger(config: LoggerConfig): config is Logger {
  return typeof config === 'object' && typeof (config as Logger).child === 'function' && typeof (config as Logger).info === 'function';
}

/**
 * The one logger of a callkeeper: made first by the composition root and handed to Fastify
 * (`loggerInstance`), so request logs and domain events are one stream with the same base fields.
 */
export function createLogger(config: LoggerConfig): Logger {
  if (isLogger(config)) return config;
  if (config === false) return pino({ level: 'silent' });
  if (config === true) return pino({ level: 'info' });
  const { stream, ...options } = config;
  const withLevel = { ...options, level: options.level ?? 'info' };
  return stream ? pino(withLevel, stream) : pino(withLevel);
}
