/** Kept for imports written before the store was split into ports: see store.ts. */
export * from './store.js';
