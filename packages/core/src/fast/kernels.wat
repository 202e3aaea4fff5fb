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

  ;; One Adam/AdamW update of n floats (optim.ts adamUpdate, PyTorch _single_tensor_adam), bit-identical to the
  ;; TypeScript loop: every element is promoted to f64, updated with the same f64 operations in the same order, and
  ;; rounded to f32 once per store; the moments are re-read after rounding, as the float32 state is what PyTorch uses.
  ;;   m ← f32(β1·m + c1·g)      v ← f32(β2·v + (c2·g)·g)        (c1 = 1 − β1, c2 = 1 − β2, computed by the caller)
  ;;   w ← f32(w·shrink − (stepSize·m) / (√v / bc2Sqrt + ε))
  ;; Two elements per f64x2 operation, two pairs per iteration; a scalar tail for n mod 4.
  (func (export "adam_update")
    (param $n i32) (param $w i32) (param $g i32) (param $m i32) (param $v i32)
    (param $b1 f64) (param $c1 f64) (param $b2 f64) (param $c2 f64)
    (param $stepSize f64) (param $bc2Sqrt f64) (param $eps f64) (param $shrink f64)
    (local $j i32) (local $end i32) (local $o i32)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128)
    (local $S v128) (local $Q v128) (local $E v128) (local $K v128)
    (local $gg v128) (local $mm v128) (local $vv v128)
    (local $gs f64) (local $ms f64) (local $vs f64)
    (local.set $B1 (f64x2.splat (local.get $b1)))
    (local.set $C1 (f64x2.splat (local.get $c1)))
    (local.set $B2 (f64x2.splat (local.get $b2)))
    (local.set $C2 (f64x2.splat (local.get $c2)))
    (local.set $S (f64x2.splat (local.get $stepSize)))
    (local.set $Q (f64x2.splat (local.get $bc2Sqrt)))
    (local.set $E (f64x2.splat (local.get $eps)))
    (local.set $K (f64x2.splat (local.get $shrink)))
    ;; vector part: byte offsets o in [0, 8 * floor(n/2)), one pair (8 bytes of each array) per step
    (local.set $end (i32.shl (i32.shr_u (local.get $n) (i32.const 1)) (i32.const 3)))
    (block $done (loop $pairs
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $gg (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $g) (local.get $o)))))
      (local.set $mm (f32x4.demote_f64x2_zero (f64x2.add
        (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $m) (local.get $o)))))
        (f64x2.mul (local.get $C1) (local.get $gg)))))
      (local.set $vv (f32x4.demote_f64x2_zero (f64x2.add
        (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $v) (local.get $o)))))
        (f64x2.mul (f64x2.mul (local.get $C2) (local.get $gg)) (local.get $gg)))))
      (v128.store64_lane 0 (i32.add (local.get $m) (local.get $o)) (local.get $mm))
      (v128.store64_lane 0 (i32.add (local.get $v) (local.get $o)) (local.get $vv))
      (v128.store64_lane 0 (i32.add (local.get $w) (local.get $o)) (f32x4.demote_f64x2_zero (f64x2.sub
        (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $w) (local.get $o)))) (local.get $K))
        (f64x2.div
          (f64x2.mul (local.get $S) (f64x2.promote_low_f32x4 (local.get $mm)))
          (f64x2.add (f64x2.div (f64x2.sqrt (f64x2.promote_low_f32x4 (local.get $vv))) (local.get $Q)) (local.get $E))))))
      (local.set $o (i32.add (local.get $o) (i32.const 8)))
      (br $pairs)))
    ;; scalar tail (n odd)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done (loop $tail
      (br_if $tail_done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $gs (f64.promote_f32 (f32.load (i32.add (local.get $g) (local.get $o)))))
      (f32.store (i32.add (local.get $m) (local.get $o)) (f32.demote_f64 (f64.add
        (f64.mul (local.get $b1) (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $o)))))
        (f64.mul (local.get $c1) (local.get $gs)))))
      (f32.store (i32.add (local.get $v) (local.get $o)) (f32.demote_f64 (f64.add
        (f64.mul (local.get $b2) (f64.promote_f32 (f32.load (i32.add (local.get $v) (local.get $o)))))
        (f64.mul (f64.mul (local.get $c2) (local.get $gs)) (local.get $gs)))))
      (local.set $ms (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $o)))))
      (local.set $vs (f64.promote_f32 (f32.load (i32.add (local.get $v) (local.get $o)))))
      (f32.store (i32.add (local.get $w) (local.get $o)) (f32.demote_f64 (f64.sub
        (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $o)))) (local.get $shrink))
        (f64.div (f64.mul (local.get $stepSize) (local.get $ms))
          (f64.add (f64.div (f64.sqrt (local.get $vs)) (local.get $bc2Sqrt)) (local.get $eps))))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $tail))))

  ;; CSR of the entries above a per-column threshold: for r < rows, j < cols (cols a multiple of 4), every
  ;; pre[r, j] > theta[j] is appended as (j, pre[r, j]) in column order, and ptr[r + 1] = entries so far (ptr[0] is
  ;; not written). Returns the entry count. The TypeScript rowsAbove (selection) does the same compare on the same
  ;; float32 values, so the output is identical; four columns are compared per f32x4.gt, and only a group with a
  ;; lane above its threshold is looked at again (at trained sparsity ~1% of the groups). The idx/val buffers need
  ;; room for 3 entries past the last kept one (lanes are written before they are known to be kept).
  (func (export "rows_above")
    (param $rows i32) (param $cols i32) (param $pre i32) (param $theta i32)
    (param $ptr i32) (param $idx i32) (param $val i32) (result i32)
    (local $r i32) (local $j i32) (local $n i32) (local $row i32) (local $bits i32) (local $a i32)
    (block $rows_done (loop $rows_loop
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $row (i32.add (local.get $pre) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
      (local.set $j (i32.const 0))
      (block $j_done (loop $j_loop
        (br_if $j_done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $a (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $bits (i32x4.bitmask (f32x4.gt (v128.load (local.get $a))
          (v128.load (i32.add (local.get $theta) (i32.shl (local.get $j) (i32.const 2)))))))
        (if (local.get $bits) (then
          ;; lane 0: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 0)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=0 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 0)) (i32.const 1))))
          ;; lane 1: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 1)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=4 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 1)) (i32.const 1))))
          ;; lane 2: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 2)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=8 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 2)) (i32.const 1))))
          ;; lane 3: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 3)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=12 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 3)) (i32.const 1))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $j_loop)))
      (i32.store (i32.add (local.get $ptr) (i32.shl (i32.add (local.get $r) (i32.const 1)) (i32.const 2))) (local.get $n))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows_loop)))
    (local.get $n))

  ;; As rows_above, for the open window theta[j] < pre[r, j] < hi[j] (JumpReLU's straight-through window).
  (func (export "rows_between")
    (param $rows i32) (param $cols i32) (param $pre i32) (param $theta i32) (param $hi i32)
    (param $ptr i32) (param $idx i32) (param $val i32) (result i32)
    (local $r i32) (local $j i32) (local $n i32) (local $row i32) (local $bits i32) (local $a i32) (local $v v128)
    (block $rows_done (loop $rows_loop
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $row (i32.add (local.get $pre) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
      (local.set $j (i32.const 0))
      (block $j_done (loop $j_loop
        (br_if $j_done (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $a (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $v (v128.load (local.get $a)))
        (local.set $bits (i32x4.bitmask (v128.and
          (f32x4.gt (local.get $v) (v128.load (i32.add (local.get $theta) (i32.shl (local.get $j) (i32.const 2)))))
          (f32x4.lt (local.get $v) (v128.load (i32.add (local.get $hi) (i32.shl (local.get $j) (i32.const 2))))))))
        (if (local.get $bits) (then
          ;; lane 0: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 0)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=0 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 0)) (i32.const 1))))
          ;; lane 1: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 1)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=4 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 1)) (i32.const 1))))
          ;; lane 2: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 2)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=8 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 2)) (i32.const 1))))
          ;; lane 3: written unconditionally, kept by advancing n only when its bit is set (no unpredictable branch)
          (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2))) (i32.add (local.get $j) (i32.const 3)))
          (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2))) (f32.load offset=12 (local.get $a)))
          (local.set $n (i32.add (local.get $n) (i32.and (i32.shr_u (local.get $bits) (i32.const 3)) (i32.const 1))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $j_loop)))
      (i32.store (i32.add (local.get $ptr) (i32.shl (i32.add (local.get $r) (i32.const 1)) (i32.const 2))) (local.get $n))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows_loop)))
    (local.get $n))

  ;; Decoder-row projection (decoder-norm.ts removeParallelGradient), bit-identical to the TypeScript loops: per row
  ;; i, nn = Σ_j w_ij² and gw = Σ_j g_ij·w_ij summed in f64 in column order (each product of two f32 is exact in
  ;; f64), then, if nn ≠ 0, g_ij ← f32(g_ij − (gw/nn)·w_ij). Two rows at a time, so four independent f64 chains hide
  ;; the add latency that bounds one sequential sum; each row's own sums keep their order.
  (func (export "project_rows") (param $m i32) (param $d i32) (param $w i32) (param $g i32)
    (local $i i32) (local $bytes i32) (local $wa i32) (local $ga i32) (local $wb i32) (local $gb i32) (local $j i32)
    (local $nnA f64) (local $gwA f64) (local $nnB f64) (local $gwB f64) (local $x f64) (local $y f64)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $wa (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $bytes))))
      (local.set $ga (i32.add (local.get $g) (i32.mul (local.get $i) (local.get $bytes))))
      ;; the second row of the pair is row i+1, or row i again when m is odd (its sums are then discarded)
      (if (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $m))
        (then (local.set $wb (i32.add (local.get $wa) (local.get $bytes))) (local.set $gb (i32.add (local.get $ga) (local.get $bytes))))
        (else (local.set $wb (local.get $wa)) (local.set $gb (local.get $ga))))
      (local.set $nnA (f64.const 0)) (local.set $gwA (f64.const 0)) (local.set $nnB (f64.const 0)) (local.set $gwB (f64.const 0))
      (local.set $j (i32.const 0))
      (block $sums_done (loop $sums
        (br_if $sums_done (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $x (f64.promote_f32 (f32.load (i32.add (local.get $wa) (local.get $j)))))
        (local.set $nnA (f64.add (local.get $nnA) (f64.mul (local.get $x) (local.get $x))))
        (local.set $gwA (f64.add (local.get $gwA) (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $ga) (local.get $j)))) (local.get $x))))
        (local.set $y (f64.promote_f32 (f32.load (i32.add (local.get $wb) (local.get $j)))))
        (local.set $nnB (f64.add (local.get $nnB) (f64.mul (local.get $y) (local.get $y))))
        (local.set $gwB (f64.add (local.get $gwB) (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $gb) (local.get $j)))) (local.get $y))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sums)))
      (call $subtract_scaled (local.get $ga) (local.get $wa) (local.get $bytes) (local.get $nnA) (local.get $gwA))
      (if (i32.ne (local.get $wb) (local.get $wa))
        (then (call $subtract_scaled (local.get $gb) (local.get $wb) (local.get $bytes) (local.get $nnB) (local.get $gwB))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $rows))))

  ;; g[j] ← f32(g[j] − (gw/nn)·w[j]) over one row of `bytes` bytes; nothing when nn = 0 (a row with no direction).
  (func $subtract_scaled (param $g i32) (param $w i32) (param $bytes i32) (param $nn f64) (param $gw f64)
    (local $c f64) (local $j i32)
    (if (f64.eq (local.get $nn) (f64.const 0)) (then (return)))
    (local.set $c (f64.div (local.get $gw) (local.get $nn)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $bytes)))
      (f32.store (i32.add (local.get $g) (local.get $j)) (f32.demote_f64 (f64.sub
        (f64.promote_f32 (f32.load (i32.add (local.get $g) (local.get $j))))
        (f64.mul (local.get $c) (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $j))))))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $cols))))

  ;; Row normalisation (decoder-norm.ts normalizeRows64), bit-identical: per row n = √(Σ_j w_ij², f64, column order),
  ;; norms[i] = n (f64), and if n ≠ 0, w_ij ← f32(w_ij · (target/n)). Two rows' sums at a time, as in project_rows.
  (func (export "normalize_rows") (param $m i32) (param $d i32) (param $w i32) (param $target f64) (param $norms i32)
    (local $i i32) (local $bytes i32) (local $wa i32) (local $wb i32) (local $j i32)
    (local $nnA f64) (local $nnB f64) (local $x f64) (local $y f64)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $wa (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $bytes))))
      (local.set $wb (select (i32.add (local.get $wa) (local.get $bytes)) (local.get $wa)
        (i32.lt_u (i32.add (local.get $i) (i32.const 1)) (local.get $m))))
      (local.set $nnA (f64.const 0)) (local.set $nnB (f64.const 0))
      (local.set $j (i32.const 0))
      (block $sums_done (loop $sums
        (br_if $sums_done (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $x (f64.promote_f32 (f32.load (i32.add (local.get $wa) (local.get $j)))))
        (local.set $nnA (f64.add (local.get $nnA) (f64.mul (local.get $x) (local.get $x))))
        (local.set $y (f64.promote_f32 (f32.load (i32.add (local.get $wb) (local.get $j)))))
        (local.set $nnB (f64.add (local.get $nnB) (f64.mul (local.get $y) (local.get $y))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sums)))
      (call $scale_row (local.get $wa) (local.get $bytes) (local.get $target) (f64.sqrt (local.get $nnA))
        (i32.add (local.get $norms) (i32.shl (local.get $i) (i32.const 3))))
      (if (i32.ne (local.get $wb) (local.get $wa))
        (then (call $scale_row (local.get $wb) (local.get $bytes) (local.get $target) (f64.sqrt (local.get $nnB))
          (i32.add (local.get $norms) (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $rows))))

  ;; norms slot ← n; w[j] ← f32(w[j] · (target/n)) over one row unless n = 0.
  (func $scale_row (param $w i32) (param $bytes i32) (param $target f64) (param $n f64) (param $slot i32)
    (local $s f64) (local $j i32)
    (f64.store (local.get $slot) (local.get $n))
    (if (f64.eq (local.get $n) (f64.const 0)) (then (return)))
    (local.set $s (f64.div (local.get $target) (local.get $n)))
    (block $done (loop $cols
      (br_if $done (i32.ge_u (local.get $j) (local.get $bytes)))
      (f32.store (i32.add (local.get $w) (local.get $j))
        (f32.demote_f64 (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $j)))) (local.get $s))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $cols))))

  ;; out = aᵀ for a row-major [r, c] matrix (sparse.ts transposeInto), in 4×4 blocks of f32x4 shuffles; r and c
  ;; multiples of 4. Pure data movement: the result is the same bits.
  (func (export "transpose") (param $r i32) (param $c i32) (param $a i32) (param $out i32)
    (local $i i32) (local $j i32) (local $rb i32) (local $cb i32) (local $src i32) (local $dst i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rb (i32.shl (local.get $r) (i32.const 2)))
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (block $i_done (loop $i_loop
      (br_if $i_done (i32.ge_u (local.get $i) (local.get $r)))
      (local.set $j (i32.const 0))
      (block $j_done (loop $j_loop
        (br_if $j_done (i32.ge_u (local.get $j) (local.get $c)))
        (local.set $src (i32.add (local.get $a) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $c)) (local.get $j)) (i32.const 2))))
        (local.set $x0 (v128.load (local.get $src)))
        (local.set $x1 (v128.load (i32.add (local.get $src) (local.get $cb))))
        (local.set $x2 (v128.load (i32.add (local.get $src) (i32.shl (local.get $cb) (i32.const 1)))))
        (local.set $x3 (v128.load (i32.add (local.get $src) (i32.mul (local.get $cb) (i32.const 3)))))
        ;; t0 = (x0[0], x1[0], x0[1], x1[1]), t1 = (x0[2], x1[2], x0[3], x1[3]), t2/t3 likewise for x2, x3
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x0) (local.get $x1)))
        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x0) (local.get $x1)))
        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x2) (local.get $x3)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x2) (local.get $x3)))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $r)) (local.get $i)) (i32.const 2))))
        (v128.store (local.get $dst) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $dst) (local.get $rb))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $dst) (i32.shl (local.get $rb) (i32.const 1)))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
        (v128.store (i32.add (local.get $dst) (i32.mul (local.get $rb) (i32.const 3)))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $j_loop)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $i_loop))))
)
