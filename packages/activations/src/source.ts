/**
 * Model sources as written on the command line: `llama2c:PATH` (a llama2.c checkpoint) or `onnx:PATH`
 * (an ONNX language model exporting hidden states). Paths may themselves contain ':' (only the first splits).
 */
export type ModelSource = { kind: 'llama2c'; path: string } | { kind: 'onnx'; path: string };

export function parseModelSource(spec: string): ModelSource {
  const i = spec.indexOf(':');
  const kind = i > 0 ? spec.slice(0, i) : '';
  const path = spec.slice(i + 1);
  if ((kind === 'llama2c' || kind === 'onnx') && path.length > 0) return { kind, path };
  throw new Error(`model source "${spec}": expected llama2c:PATH or onnx:PATH`);
}

/** Where the shared stories260K folder lives: $SAELAB_MODELS_DIR/stories260K, else ../shared/models beside the repo. */
export function sharedModelsDir(repoRoot: string): string {
  return process.env.SAELAB_MODELS_DIR ?? `${repoRoot}/../shared/models`;
}
