import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

// The four prom-client classes the server uses, each from its own module. prom-client's index
// also loads every default process metric, and with them @opentelemetry/api: about 70 ms of CPU
// at every server start for nothing the server uses (docs/benchmarks.md). The classes are the
// index's own (the same modules), so the types are prom-client's.
const require = createRequire(import.meta.url);

export const Counter: typeof PromClient.Counter = require('prom-client/lib/counter');
export type Counter<T extends string> = PromClient.Counter<T>;
export const Gauge: typeof PromClient.Gauge = require('prom-client/lib/gauge');
export type Gauge<T extends string> = PromClient.Gauge<T>;
export const Histogram: typeof PromClient.Histogram = require('prom-client/lib/histogram');
export type Histogram<T extends string> = PromClient.Histogram<T>;
export const Registry: typeof PromClient.Registry = require('prom-client/lib/registry');
export type Registry = PromClient.Registry;
