/** Sparse SAE kernels: CSR latents, reusable workspaces, TypeScript and WebAssembly SIMD loops. */
export * from './csr.js';
export * from './selection.js';
export * from './workspace.js';
export { wasmKernelsAvailable, sparseMatmulWasm, sampledDotsWasm, scatterOuterWasm, wasmAdamAvailable, adamUpdateWasm } from './wasm.js';
