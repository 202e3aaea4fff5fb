;; SIMD kernels for sparse SAE training (WebAssembly 128-bit SIMD, f32x4).
;; Assembled by `npx tsx tools/build-wasm.ts` into kernels-wasm.ts (base64); the TypeScript versions of the same
;; loops are in sparse.ts and the tests compare the two. All pointers are byte offsets into this module's memory.
;; Row length d must be a multiple of 16 floats: the inner loops move 4 vectors (64 bytes) per iteration, which
;; keeps four independent chains in flight.
;;
;; CSR layout (see SparseRows): ptr[rows+1] (i32), idx[nnz] (i32), val[nnz] (f32).
(module
  (memory (export "memory") 1)

  ;; out[r, :] = bias + Σ_{e in row r} val[e] · W[idx[e], :]      (x̂ = f·W_dec + b_dec, gather form)
  ;; bias = 0 means no bias.
  (func (export "gather_axpy")
    (param $rows i32) (param $d i32) (param $ptr i32) (param $idx i32) (param $val i32)
    (param $w i32) (param $bias i32) (param $out i32)
    (local $r i32) (local $e i32) (local $end i32) (local $o i32) (local $src i32) (local $j i32)
    (local $bytes i32) (local $v v128) (local $y i32) (local $x i32)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $rows_done (loop $rows_loop
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $o (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $bytes))))
      (if (local.get $bias)
        (then (memory.copy (local.get $o) (local.get $bias) (local.get $bytes)))
        (else (memory.fill (local.get $o) (i32.const 0) (local.get $bytes))))
      (local.set $e (i32.load (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (local.set $end (i32.load offset=4 (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (block $e_done (loop $e_loop
        (br_if $e_done (i32.ge_u (local.get $e) (local.get $end)))
        (local.set $v (f32x4.splat (f32.load (i32.add (local.get $val) (i32.shl (local.get $e) (i32.const 2))))))
        (local.set $src (i32.add (local.get $w)
          (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $e) (i32.const 2)))) (local.get $bytes))))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $bytes)))
          ;; y[0..16) += v · x[0..16), inline (V8 does not inline wasm calls here)
          (local.set $y (i32.add (local.get $o) (local.get $j)))
          (local.set $x (i32.add (local.get $src) (local.get $j)))
          (v128.store (local.get $y) (f32x4.add (v128.load (local.get $y)) (f32x4.mul (local.get $v) (v128.load (local.get $x)))))
          (v128.store offset=16 (local.get $y)
            (f32x4.add (v128.load offset=16 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=16 (local.get $x)))))
          (v128.store offset=32 (local.get $y)
            (f32x4.add (v128.load offset=32 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $x)))))
          (v128.store offset=48 (local.get $y)
            (f32x4.add (v128.load offset=48 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=48 (local.get $x)))))
          (local.set $j (i32.add (local.get $j) (i32.const 64)))
          (br $j_loop)))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $e_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows_loop))))

  ;; acc[idx[e], :] += val[e] · G[r, :]      (Sᵀ·G by scatter-add: dW_dec = fᵀ·dX̂, dW_encᵀ = dPreᵀ·input)
  (func (export "scatter_outer")
    (param $rows i32) (param $d i32) (param $ptr i32) (param $idx i32) (param $val i32)
    (param $g i32) (param $acc i32)
    (local $r i32) (local $e i32) (local $end i32) (local $src i32) (local $dst i32) (local $j i32)
    (local $bytes i32) (local $v v128) (local $y i32) (local $x i32)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $rows_done (loop $rows_loop
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $src (i32.add (local.get $g) (i32.mul (local.get $r) (local.get $bytes))))
      (local.set $e (i32.load (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (local.set $end (i32.load offset=4 (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (block $e_done (loop $e_loop
        (br_if $e_done (i32.ge_u (local.get $e) (local.get $end)))
        (local.set $v (f32x4.splat (f32.load (i32.add (local.get $val) (i32.shl (local.get $e) (i32.const 2))))))
        (local.set $dst (i32.add (local.get $acc)
          (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $e) (i32.const 2)))) (local.get $bytes))))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $y (i32.add (local.get $dst) (local.get $j)))
          (local.set $x (i32.add (local.get $src) (local.get $j)))
          (v128.store (local.get $y) (f32x4.add (v128.load (local.get $y)) (f32x4.mul (local.get $v) (v128.load (local.get $x)))))
          (v128.store offset=16 (local.get $y)
            (f32x4.add (v128.load offset=16 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=16 (local.get $x)))))
          (v128.store offset=32 (local.get $y)
            (f32x4.add (v128.load offset=32 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $x)))))
          (v128.store offset=48 (local.get $y)
            (f32x4.add (v128.load offset=48 (local.get $y)) (f32x4.mul (local.get $v) (v128.load offset=48 (local.get $x)))))
          (local.set $j (i32.add (local.get $j) (i32.const 64)))
          (br $j_loop)))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $e_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows_loop))))

  ;; out[e] = G[r, :] · W[idx[e], :]      (∂L/∂f = dX̂·W_decᵀ sampled at the active entries)
  (func (export "sampled_dots")
    (param $rows i32) (param $d i32) (param $ptr i32) (param $idx i32)
    (param $g i32) (param $w i32) (param $out i32)
    (local $r i32) (local $e i32) (local $end i32) (local $a i32) (local $b i32) (local $j i32)
    (local $bytes i32) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $rows_done (loop $rows_loop
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $a (i32.add (local.get $g) (i32.mul (local.get $r) (local.get $bytes))))
      (local.set $e (i32.load (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (local.set $end (i32.load offset=4 (i32.add (local.get $ptr) (i32.shl (local.get $r) (i32.const 2)))))
      (block $e_done (loop $e_loop
        (br_if $e_done (i32.ge_u (local.get $e) (local.get $end)))
        (local.set $b (i32.add (local.get $w)
          (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $e) (i32.const 2)))) (local.get $bytes))))
        (local.set $s0 (v128.const f32x4 0 0 0 0))
        (local.set $s1 (v128.const f32x4 0 0 0 0))
        (local.set $s2 (v128.const f32x4 0 0 0 0))
        (local.set $s3 (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul
            (v128.load (i32.add (local.get $a) (local.get $j))) (v128.load (i32.add (local.get $b) (local.get $j))))))
          (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul
            (v128.load offset=16 (i32.add (local.get $a) (local.get $j))) (v128.load offset=16 (i32.add (local.get $b) (local.get $j))))))
          (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul
            (v128.load offset=32 (i32.add (local.get $a) (local.get $j))) (v128.load offset=32 (i32.add (local.get $b) (local.get $j))))))
          (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul
            (v128.load offset=48 (i32.add (local.get $a) (local.get $j))) (v128.load offset=48 (i32.add (local.get $b) (local.get $j))))))
          (local.set $j (i32.add (local.get $j) (i32.const 64)))
          (br $j_loop)))
        (local.set $s0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $e) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $s0)) (f32x4.extract_lane 1 (local.get $s0)))
            (f32.add (f32x4.extract_lane 2 (local.get $s0)) (f32x4.extract_lane 3 (local.get $s0)))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $e_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows_loop))))

)
