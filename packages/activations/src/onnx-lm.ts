/**
 * Any ONNX language model as a HookableLM (read-only hooks): the model takes token ids `[B, T]` (int64) and
 * returns logits `[B, T, V]` plus hidden states `[B, T, d]` as extra graph outputs (e.g. a Hugging Face model
 * exported with `output_hidden_states=True`). Each hidden-state output is mapped to a hook site name.
 *
 * Replacing an activation inside an opaque ONNX graph is not possible, so `replace` throws; ΔLM loss needs a
 * model with a replace hook (llama2.c, Longhorn).
 */
import ort from 'onnxruntime-node';
import { z } from 'zod';
import type { HookableLM, LmInfo, LmRunOptions, LmRunResult, Tensor } from '@saelab/core';

export const OnnxLmOptionsSchema = z.object({
  /** Token-id input (int64 [B, T]). Default: the model's first input. */
  inputName: z.string().optional(),
  /** Logits output ([B, T, V]). Default: an output named "logits", if any. */
  logitsOutput: z.string().optional(),
  /** site name → graph output name. Default: every non-logits output is a site named after the output. */
  sites: z.record(z.string(), z.string()).optional(),
  /** BOS token id (rows at BOS are excluded from harvests), or null. */
  bos: z.number().int().nonnegative().nullable().default(null),
  /** Longest context (default: unlimited). */
  maxSeqLen: z.number().int().positive().optional(),
  name: z.string().optional(),
  threads: z.number().int().nonnegative().default(0),
});
export type OnnxLmOptions = z.input<typeof OnnxLmOptionsSchema>;

export class OnnxLM implements HookableLM {
  private constructor(
    readonly info: LmInfo,
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly extraInputs: string[],
    private readonly logitsOutput: string | null,
    private readonly siteOutputs: Map<string, string>,
    private readonly dims: Map<string, number>,
  ) {}

  /** Load a model from a path or bytes; one probe run on [1, 2] zeros discovers the output widths. */
  static async create(model: string | Uint8Array, options: OnnxLmOptions = {}): Promise<OnnxLM> {
    const o = OnnxLmOptionsSchema.parse(options);
    const where = typeof model === 'string' ? model : 'ONNX model';
    let session: ort.InferenceSession;
    try {
      const so = { intraOpNumThreads: o.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
      session = typeof model === 'string' ? await ort.InferenceSession.create(model, so) : await ort.InferenceSession.create(model, so);
    } catch (e) {
      throw new Error(`${where}: onnxruntime cannot load the model: ${(e as Error).message}`);
    }
    const inputName = o.inputName ?? session.inputNames[0]!;
    if (!session.inputNames.includes(inputName)) throw new Error(`${where}: no input "${inputName}" (inputs: ${session.inputNames.join(', ')})`);
    const extra = session.inputNames.filter((n) => n !== inputName);
    const unknownExtra = extra.filter((n) => n !== 'attention_mask' && n !== 'position_ids');
    if (unknownExtra.length > 0) throw new Error(`${where}: cannot feed inputs ${unknownExtra.join(', ')} (only ${inputName}, attention_mask, position_ids)`);
    const logitsOutput = o.logitsOutput ?? (session.outputNames.includes('logits') ? 'logits' : null);
    if (logitsOutput !== null && !session.outputNames.includes(logitsOutput)) {
      throw new Error(`${where}: no output "${logitsOutput}" (outputs: ${session.outputNames.join(', ')})`);
    }
    const sites = new Map(Object.entries(o.sites ?? Object.fromEntries(session.outputNames.filter((n) => n !== logitsOutput).map((n) => [n, n]))));
    for (const [site, out] of sites) {
      if (!session.outputNames.includes(out)) throw new Error(`${where}: site "${site}" maps to missing output "${out}" (outputs: ${session.outputNames.join(', ')})`);
    }
    const probe = await session.run(OnnxLM.feeds(inputName, extra, new Int32Array(2), 1, 2));
    const dims = new Map<string, number>();
    for (const [site, out] of sites) {
      const t = probe[out]!;
      if (t.dims.length !== 3 || t.dims[0] !== 1 || t.dims[1] !== 2) throw new Error(`${where}: output "${out}" has shape [${t.dims.join(', ')}] for [1, 2] tokens; expected [1, 2, d]`);
      dims.set(site, Number(t.dims[2]));
    }
    const vocab = logitsOutput ? Number(probe[logitsOutput]!.dims[2]) : 0;
    const dModel = dims.size > 0 ? Math.max(...dims.values()) : 0;
    const info: LmInfo = { name: o.name ?? `onnx:${where}`, vocabSize: vocab, dModel, nLayers: sites.size, maxSeqLen: o.maxSeqLen ?? Number.POSITIVE_INFINITY, bos: o.bos };
    return new OnnxLM(info, session, inputName, extra, logitsOutput, sites, dims);
  }

  private static feeds(inputName: string, extra: string[], tokens: Int32Array, B: number, T: number): Record<string, ort.Tensor> {
    const ids = BigInt64Array.from(tokens, (t) => BigInt(t));
    const feeds: Record<string, ort.Tensor> = { [inputName]: new ort.Tensor('int64', ids, [B, T]) };
    for (const n of extra) {
      const v = n === 'attention_mask' ? () => 1n : (i: number) => BigInt(i % T);
      feeds[n] = new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, (_, i) => v(i)), [B, T]);
    }
    return feeds;
  }

  sites(): string[] {
    return [...this.siteOutputs.keys()];
  }

  siteDim(site: string): number {
    const d = this.dims.get(site);
    if (d === undefined) throw new Error(`unknown hook site "${site}" for ${this.info.name}: sites are ${this.sites().join(', ')}`);
    return d;
  }

  async run(tokens: Int32Array, batch: number, seqLen: number, opts: LmRunOptions = {}): Promise<LmRunResult> {
    if (opts.replace) throw new Error(`${this.info.name}: replace hooks are not supported for ONNX models (the graph is opaque)`);
    if (tokens.length !== batch * seqLen) throw new Error(`run: ${tokens.length} tokens but batch·seqLen = ${batch * seqLen}`);
    if (seqLen > this.info.maxSeqLen) throw new Error(`run: seqLen ${seqLen} exceeds the model's context ${this.info.maxSeqLen}`);
    const reads = opts.read ?? [];
    for (const s of reads) this.siteDim(s);
    const fetches = reads.map((s) => this.siteOutputs.get(s)!);
    if (!opts.skipLogits) {
      if (!this.logitsOutput) throw new Error(`${this.info.name}: model has no logits output; pass skipLogits`);
      fetches.push(this.logitsOutput);
    }
    const out = await this.session.run(OnnxLM.feeds(this.inputName, this.extraInputs, tokens, batch, seqLen), [...new Set(fetches)]);
    const toTensor = (name: string, width: number): Tensor => {
      const t = out[name]!;
      if (t.type !== 'float32') throw new Error(`${this.info.name}: output "${name}" is ${t.type}, expected float32`);
      return { data: Float32Array.from(t.data as Float32Array), shape: [batch * seqLen, width] };
    };
    const acts: Record<string, Tensor> = {};
    for (const s of reads) acts[s] = toTensor(this.siteOutputs.get(s)!, this.dims.get(s)!);
    return opts.skipLogits ? { acts } : { acts, logits: toTensor(this.logitsOutput!, this.info.vocabSize) };
  }
}
