/**
 * The open-loop load generator in a process of its own (fixedRateLoadApart in fixed-rate.ts):
 * receives {type:'run', spec, paths}, runs fixedRateLoad with the paths in order, answers
 * {type:'result'} (or {type:'error'}).
 */
import { type FixedRateSpec, fixedRateLoad } from './fixed-rate.js';

type Run = { type: 'run'; spec: Omit<FixedRateSpec, 'pathFor'>; paths: string[] };

process.on('message', (m: Run) => {
  if (m.type !== 'run') return;
  let i = 0;
  const pathFor = () => m.paths[i++ % m.paths.length] as string;
  fixedRateLoad({ ...m.spec, pathFor }).then(
    (result) => process.send?.({ type: 'result', result }),
    (err: unknown) => process.send?.({ type: 'error', error: String(err) }),
  );
});
process.send?.({ type: 'ready', url: '' });
