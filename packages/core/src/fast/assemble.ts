/** WAT → WebAssembly bytes with the wabt package (a dev dependency: used by tools/build-wasm.ts and the tests). */
export async function assembleKernels(wat: string): Promise<Uint8Array> {
  const { default: initWabt } = await import('wabt');
  const wabt = await initWabt();
  const mod = wabt.parseWat('kernels.wat', wat, { simd: true, bulk_memory: true });
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}
