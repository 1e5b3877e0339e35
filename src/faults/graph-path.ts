import { cloudOfPath } from '../auth/clouds.js';

/** The Graph path after the cloud prefix and version ("/communications/calls/abc"), or undefined if the URL is not a Graph path. */
export function graphPathOf(url: string): string | undefined {
  const { rest } = cloudOfPath(url.split('?')[0] ?? '');
  const m = /^\/(v1\.0|beta)(\/.*)?$/.exec(rest);
  if (!m) return undefined;
  return (m[2] ?? '/').replace(/\/+$/, '') || '/';
}
