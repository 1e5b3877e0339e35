import { cpus, release, totalmem, type } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  os: string;
  node: string;
}

export function describeMachine(): Machine {
  const cpu = cpus();
  return {
    cpu: (cpu[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    cores: cpu.length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM, ${m.os}, Node.js ${m.node}`;
}
