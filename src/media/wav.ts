/** Sample rate of generated recordings: 16 kHz mono 16-bit PCM, what Teams' service-hosted media records in. */
export const WAV_SAMPLE_RATE = 16_000;

/** Longest recording Graph makes (call-record.md: "The maximum length of recording is 2 minutes"). */
export const MAX_RECORDING_MS = 120_000;

/**
 * A RIFF/WAVE file of `durationMs` of audio: a quiet 440 Hz tone, so a bot that plays or
 * transcribes the recording gets real, decodable audio. Deterministic for a duration.
 */
export function generateWav(durationMs: number): Buffer {
  const ms = Math.min(Math.max(Math.round(durationMs), 0), MAX_RECORDING_MS);
  const samples = Math.round((ms * WAV_SAMPLE_RATE) / 1000);
  const dataBytes = samples * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(WAV_SAMPLE_RATE, 24);
  buf.writeUInt32LE(WAV_SAMPLE_RATE * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  const step = (2 * Math.PI * 440) / WAV_SAMPLE_RATE;
  for (let i = 0; i < samples; i++) buf.writeInt16LE(Math.round(Math.sin(i * step) * 3000), 44 + i * 2);
  return buf;
}
