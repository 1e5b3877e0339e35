// The test-wide loopback guard: loaded with `--import` by `npm test` (and inherited through
// NODE_OPTIONS by every process a test starts), it refuses any DNS lookup of a name other than
// `localhost` and any TCP connection to an address other than 127.0.0.0/8 or ::1, and makes the
// run fail when something tried. Tests must send nothing beyond loopback (docs/security.md).
// Plain JavaScript so that spawned servers (dist/) load it without a TypeScript loader.

import dns from 'node:dns';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LOG_ENV = 'CALLKEEPER_LOOPBACK_GUARD_LOG';
const SELF = import.meta.url;

if (!globalThis.__callkeeperLoopbackGuard) {
  globalThis.__callkeeperLoopbackGuard = true;
  install();
}

function isLoopbackIp(address) {
  const a = String(address)
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return net.isIPv4(v4) && v4.startsWith('127.');
}

function isLoopbackName(host) {
  const h = String(host).toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || isLoopbackIp(h);
}

function install() {
  const root = process.env[LOG_ENV] === undefined;
  if (root) {
    // The first guarded process (the test runner) owns the log every descendant appends to.
    const dir = mkdtempSync(join(tmpdir(), 'callkeeper-loopback-guard-'));
    process.env[LOG_ENV] = join(dir, 'violations.log');
    writeFileSync(process.env[LOG_ENV], '');
    process.on('exit', () => {
      let text = '';
      try {
        text = readFileSync(process.env[LOG_ENV], 'utf8');
      } catch {}
      rmSync(dir, { recursive: true, force: true });
      if (text.trim() !== '') {
        process.stderr.write(`\nloopback guard: traffic beyond loopback was attempted:\n${text}`);
        process.exitCode = 1;
      }
    });
  }
  // Processes the tests spawn (callkeeper servers, bots, keepers) are guarded too.
  const flag = `--import=${SELF}`;
  if (!(process.env.NODE_OPTIONS ?? '').includes(SELF)) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${flag}`.trim();

  const violations = [];
  const where = () => {
    const file = process.argv.slice(1).find((a) => /\.(test\.)?[cm]?[jt]s$/.test(a));
    return file ? fileURLToPath(new URL(file, `file://${process.cwd()}/`)) : process.argv.join(' ');
  };
  const violation = (what) => {
    const line = `${what} (pid ${process.pid}, ${where()})`;
    violations.push(line);
    try {
      appendFileSync(process.env[LOG_ENV], `${line}\n${new Error('attempted at').stack?.split('\n').slice(2, 8).join('\n')}\n`);
    } catch {}
    return new Error(`loopback guard: ${what} is refused in tests; use a loopback address (127.0.0.1, ::1)`);
  };
  if (!root) {
    // A test file's own process fails by itself, so node --test names the file.
    process.on('exit', () => {
      if (violations.length > 0) process.exitCode = 1;
    });
  }

  const origConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function connect(...args) {
    let opts = args[0];
    if (Array.isArray(opts)) opts = opts[0];
    let host;
    let path;
    if (opts !== null && typeof opts === 'object') {
      host = opts.host;
      path = opts.path;
    } else if (typeof opts === 'number' || (typeof opts === 'string' && /^\d+$/.test(opts))) {
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else if (typeof opts === 'string') {
      path = opts;
    }
    if (path === undefined && host !== undefined && host !== '' && !isLoopbackName(host)) {
      const err = violation(`a connection to ${host}`);
      process.nextTick(() => this.destroy(err));
      return this;
    }
    return origConnect.apply(this, args);
  };

  const refuseName = (fnName, hostname) => violation(`a DNS ${fnName} of ${String(hostname)}`);
  // Looking up an IP literal asks no DNS server (listen('0.0.0.0') does it); a name must be localhost.
  const lookupAllowed = (hostname) => isLoopbackName(hostname) || net.isIP(String(hostname)) !== 0;
  const origLookup = dns.lookup;
  dns.lookup = function lookup(hostname, ...rest) {
    if (!lookupAllowed(hostname)) {
      const err = refuseName('lookup', hostname);
      const cb = rest.find((x) => typeof x === 'function');
      err.code = 'ENOTFOUND';
      if (cb) process.nextTick(() => cb(err));
      return {};
    }
    return origLookup.call(this, hostname, ...rest);
  };
  const origPromiseLookup = dns.promises.lookup;
  dns.promises.lookup = async function lookup(hostname, ...rest) {
    if (!lookupAllowed(hostname)) throw Object.assign(refuseName('lookup', hostname), { code: 'ENOTFOUND' });
    return origPromiseLookup.call(this, hostname, ...rest);
  };
  // Every resolve* (resolve4, resolveSrv, ...), callback and promise flavours, and Resolver objects.
  const wrapResolvers = (target, async) => {
    for (const name of Object.getOwnPropertyNames(target)) {
      if (!/^resolve|^reverse$/.test(name) || typeof target[name] !== 'function') continue;
      const orig = target[name];
      target[name] = async
        ? async (...a) => {
            throw Object.assign(refuseName(name, a[0]), { code: 'ENOTFOUND' });
          }
        : (...a) => {
            const err = Object.assign(refuseName(name, a[0]), { code: 'ENOTFOUND' });
            const cb = a.find((x) => typeof x === 'function');
            if (cb) process.nextTick(() => cb(err));
          };
      Object.defineProperty(target[name], 'name', { value: orig.name });
    }
  };
  wrapResolvers(dns, false);
  wrapResolvers(dns.Resolver.prototype, false);
  wrapResolvers(dns.promises, true);
  wrapResolvers(dns.promises.Resolver.prototype, true);
  syncBuiltinESMExports();
}
