import { CliError } from './options.js';

/** Listens, turning the usual failures into a message naming the option to change. */
export async function listenOrExplain(
  listen: () => Promise<string>,
  host: string,
  port: number,
  portLabel: string,
  hostLabel: string,
): Promise<string> {
  try {
    return await listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (code === 'EADDRINUSE')
      throw new CliError(`${portLabel}: ${where} is already in use (another callkeeper?); choose another port, or 0 for a free one`);
    if (code === 'EACCES') throw new CliError(`${portLabel}: not allowed to listen on ${where} (ports below 1024 need privileges)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      throw new CliError(`${hostLabel}: cannot listen on ${host}: not an address of this machine (${code})`);
    throw err;
  }
}
