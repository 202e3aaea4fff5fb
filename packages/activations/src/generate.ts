/**
 * `generate`: text generation exactly as llama2.c's run.c `generate()` prints it — the prompt tokens are
 * forced, then tokens are sampled until `steps` positions or a BOS token; each piece goes through run.c's
 * decode (BOS-strips-leading-space, `<0xXX>` → byte) and safe_printf, and a final "\n" is printed.
 */
import { z } from 'zod';
import { Llama2cModel } from './llama2c/model.js';
import { Sampler } from './llama2c/sampler.js';
import { LLAMA2C_BOS, Llama2cTokenizer } from './llama2c/tokenizer.js';
import { parseModelSource } from './source.js';

export const GenerateOptionsSchema = z.object({
  /** `llama2c:PATH` or a plain path to a llama2.c checkpoint. */
  model: z.string().min(1),
  /** Path to the llama2.c tokenizer (tokenizer.bin / tok512.bin). */
  tokenizer: z.string().min(1),
  prompt: z.string().default(''),
  /** Positions to run (run.c: 0 or more than seq_len means seq_len). */
  steps: z.number().int().min(0).default(256),
  temperature: z.number().min(0).default(1),
  topp: z.number().min(0).max(1).default(0.9),
  /** xorshift seed (run.c default: the current time). */
  seed: z.number().int().positive().optional(),
});
export type GenerateOptions = z.input<typeof GenerateOptionsSchema>;

export interface GenerateResult {
  /** Exactly the bytes run.c prints to stdout (including the final newline). */
  bytes: Uint8Array;
  /** All tokens, starting with BOS. */
  tokens: number[];
  /** Tokens per second after the first (as run.c reports on stderr). */
  tokensPerSecond: number;
}

/**
 * Run generation. `write` receives each printed chunk as it is produced (e.g. `b => process.stdout.write(b)`),
 * so a CLI streams like run.c does; the full output is also returned.
 */
export async function generate(options: GenerateOptions, write?: (chunk: Uint8Array) => void): Promise<GenerateResult> {
  const opts = GenerateOptionsSchema.parse(options);
  const src = parseModelSource(opts.model.includes(':') ? opts.model : `llama2c:${opts.model}`);
  if (src.kind !== 'llama2c') throw new Error(`generate: only llama2c:PATH models are supported (got ${opts.model})`);
  const model = Llama2cModel.load(src.path);
  const tok = Llama2cTokenizer.load(opts.tokenizer, model.config.vocabSize);
  const steps = opts.steps === 0 || opts.steps > model.config.seqLen ? model.config.seqLen : opts.steps;
  const sampler = new Sampler({ temperature: opts.temperature, topp: opts.topp, seed: opts.seed ?? Math.floor(Date.now() / 1000) });

  const prompt = tok.encode(opts.prompt, true, false);
  const chunks: Uint8Array[] = [];
  const emit = (b: Uint8Array) => {
    if (b.length === 0) return;
    chunks.push(b);
    write?.(b);
  };
  const tokens = [prompt[0]!];
  let token = prompt[0]!;
  let pos = 0;
  let start = 0;
  while (pos < steps) {
    const logits = model.step(token, pos);
    const next = pos < prompt.length - 1 ? prompt[pos + 1]! : sampler.sample(logits);
    pos++;
    if (next === LLAMA2C_BOS) break; // BOS delimits sequences
    emit(Llama2cTokenizer.safePrintable(tok.decodePiece(token, next)));
    tokens.push(next);
    token = next;
    if (start === 0) start = performance.now();
  }
  emit(Uint8Array.of(0x0a));
  const elapsed = (performance.now() - start) / 1000;
  return { bytes: Buffer.concat(chunks), tokens, tokensPerSecond: pos > 1 && elapsed > 0 ? (pos - 1) / elapsed : 0 };
}
