/** Sparse SAE kernels: CSR latents, reusable workspaces, TypeScript and WebAssembly SIMD loops. */
export * from './sparse.js';
export * from './workspace.js';
export { wasmKernelsAvailable, sparseMatmulWasm, sampledDotsWasm, scatterOuterWasm, wasmAdamAvailable, adamUpdateWasm } from './wasm.js';
export * from './paths.js';
