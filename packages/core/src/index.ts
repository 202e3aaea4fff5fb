/**
 * @saelab/core's public API, listed name by name. Two layers:
 * - the numeric base: tensors, RNG, GEMM engines, dense and sparse kernels, optimisers and schedules, file I/O,
 *   WebAssembly plumbing, the language-model contract;
 * - the SAE kit over it (`sae/`): the architecture contract, the shared SAE ops, the generic trainer, folders,
 *   metrics. It knows no particular SAE: the architectures live in the `@saelab/sae-*` packages.
 * Test helpers are separate entry points: `@saelab/core/testing`, `@saelab/core/conformance`, `@saelab/core/reference`.
 */

// ── numeric base ───────────────────────────────────────────────────────────────────────────────────────────────
export { type Params, type Tensor, assertFinite, assertShape, clone, cloneParams, dims2, fromArray, numel, sameShape, tensor, zeros, zerosLike } from './tensor.js';
export { Rng } from './rng.js';
export {
  type AttentionShape,
  type GemmEngine,
  type GemmOptions,
  type OrtEngineOptions,
  type TopKResult,
  buildAffineTopKModel,
  buildCausalAttentionModel,
  buildGemmModel,
  createOrtEngine,
  defaultEngine,
  gemmDims,
  gemmSync,
  jsEngine,
  tryCreateTfjsNodeEngine,
} from './gemm.js';
export { columnSums, subRowVector } from './kernels.js';
export {
  type SparseMode,
  type WorkspaceOptions,
  PhaseTimer,
  SparseRows,
  Workspace,
  globalTopK,
  globalTopKCut,
  rowsAbove,
  rowsAboveTs,
  rowsBetween,
  sampledDotsTs,
  sampledDotsWasm,
  scatterOuterTs,
  scatterOuterWasm,
  sparseColumnSums,
  sparseMatmulTs,
  sparseMatmulWasm,
  topKRows,
  transposeInto,
  wasmKernelsAvailable,
  workspaceOf,
} from './fast/index.js';
export { type Optimizer, type OptimizerConfigInput, type OptimizerOptions, type OptimizerState, OptimizerConfig, createOptimizer } from './optim.js';
export { type LrScheduleInput, LrSchedule, clipGradNorm, lrAt, parseLrSchedule, warmupCoefficient } from './schedule.js';
export { type FoldDecoderNormsArgs, foldDecoderNorms, normalizeRows, removeParallelGradient, rowNorms } from './decoder-norm.js';
export { NormScaleEstimator, estimateNormScale, scaleRows } from './normalize.js';
export { type GeometricMedianOptions, type GeometricMedianResult, geometricMedian, sumOfDistances } from './geometric-median.js';
export {
  type ActivationFile,
  type DecodedSafetensors,
  type FloatDtype,
  type NpyHeader,
  type RowSource,
  type SaelensFolder,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  type ShuffledBatchStreamOptions,
  type StreamPosition,
  type TrainingState,
  DTYPE_BYTES,
  NpyRowWriter,
  SAE_CFG_FILE,
  SAE_WEIGHTS_FILE,
  ShuffledBatchStream,
  bf16ToF32Array,
  bytesToFloat32,
  checkRowRange,
  decodeNpy,
  decodeSafetensors,
  encodeNpy,
  encodeSafetensors,
  f16BitsToNumber,
  f16ToF32Array,
  f32ToF16Array,
  findTensor,
  float32Bytes,
  iterateRows,
  loadSaelensFolder,
  loadTrainingState,
  npyHeaderBytes,
  numberToF16Bits,
  openActivationFile,
  parseNpyHeader,
  parseSafetensorsHeader,
  readNpyFile,
  readNpyHeader,
  readNpyHeaderFrom,
  readNpyRows,
  readNpyRowsFrom,
  readSafetensorsFile,
  readSafetensorsHeader,
  readSafetensorsHeaderFrom,
  readSafetensorsRows,
  readTensorRows,
  replaceDirAtomic,
  safetensorsFloatDtype,
  sampleRows,
  saveSaelensFolder,
  saveTrainingState,
  tempSibling,
  writeFileAtomic,
  writeFileAtomicSync,
  writeNpyFile,
  writeSafetensorsFile,
} from './io/index.js';
export { type WasmMemory, WasmArena, instantiateWasm } from './wasm.js';
export { type HookableLM, type LmInfo, type LmRunOptions, type LmRunResult, nextTokenCrossEntropy } from './lm.js';
export {
  type DifferenceTest,
  bootstrapCounts,
  holmAdjust,
  incompleteBeta,
  lnGamma,
  meanVar,
  normalUpperTail,
  quantile,
  studentTCritical,
  studentTTwoSidedP,
  welchTest,
} from './stats.js';
export { type PcaModel, fitPca, pcaReconstruct, symmetricEigen } from './pca.js';

// ── the SAE kit ────────────────────────────────────────────────────────────────────────────────────────────────
export {
  type ArchName,
  type BaseSaeConfig,
  type LossAndGrads,
  type RunInfo,
  type RunOption,
  type SaeArchitecture,
  type SaeContext,
  type SaelensArchitecture,
  type SparsityKnob,
  type TrainingRecipe,
  baseSaeConfigSchema,
  defaultSparsityFor,
  defaultLrFor,
  kSparsity,
  penaltySparsity,
} from './sae/contract.js';
export { type SaeDefinition, type SaelensFields, type TrainStateCodec, defineSae } from './sae/define.js';
export {
  architectureForSaelens,
  architectureNames,
  getArchitecture,
  registerArchitecture,
  registeredArchitectures,
  saelensActivationFn,
  saelensArchitectureIs,
} from './sae/registry.js';
export {
  type DictionaryParams,
  type SparseLossAndGrads,
  accumulate,
  decodeAffine,
  decoderBackward,
  encoderBackward,
  encoderInput,
  encoderPre,
  encodeAboveThreshold,
  encoderTopK,
  foldInputScale,
  freshContext,
  initTiedDictionary,
  lossAndGradsResult,
  reconstructionLoss,
  sampledDots,
} from './sae/ops.js';
export { type StepStats, type TrainerOptions, SaeTrainer, batchFvu, recipeOptions, resampleFor, trainerOptionsSchema } from './sae/trainer.js';
export { type ResampleOptions, SHORT_RUN_RESAMPLING, deadForResampling, isResampleStep, resampleLatents, resampleOptionsSchema, weightedSampleWithoutReplacement } from './sae/resample.js';
export { type L0ControllerOptions, type L0ControllerState, L0Controller, defaultL0ControllerOptions, l0ControllerOptionsSchema } from './sae/l0-controller.js';
export {
  type AuxKConfig,
  type DeadLatentState,
  auxKConfigFields,
  auxKFieldsFromSaelens,
  auxKPossible,
  auxKSaelensFields,
  deadLatentState,
  deadLatentsAuxK,
  deadTokensFor,
  updateDeadLatents,
} from './sae/auxk.js';
export {
  type BatchThresholdState,
  type BatchTopKState,
  batchThresholdConfigFields,
  batchThresholdSaelensFields,
  batchThresholdState,
  batchTopKFamily,
  batchTopKSelect,
  encodeWithBatchThreshold,
  kRunConfig,
  updateBatchThreshold,
} from './sae/batch-threshold.js';
export { type LoadedSae, SAELAB_VERSION, loadSae, loadSaeAs, saelensConfig, saveSae, servedForm } from './sae/folder.js';
export {
  type MetricDefinition,
  type MetricRecord,
  type MetricsSummary,
  DENSE_FIRING_FRACTION,
  METRIC_DEFINITIONS,
  MetricsAccumulator,
  ceRecovered,
  deltaLmLoss,
  maxCosineSimilarities,
  meanMaxCosineSimilarity,
} from './sae/metrics.js';
export { type DensityHistogram, SaeBenchExplainedVariance, klDivScore, klDivergenceRows, latentDensityHistogram } from './sae/field-metrics.js';
export { type SyntheticOptions, syntheticSparseData } from './sae/synthetic.js';
export { densePathDifferences, relativeDifference } from './sae/dense-vs-sparse.js';
