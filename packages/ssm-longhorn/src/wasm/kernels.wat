;; WebAssembly 128-bit SIMD (f32x4) kernels of the Longhorn LM's training step, assembled by
;; `npx tsx packages/ssm-longhorn/tools/build-wasm.ts` into kernels-wasm.ts (base64). The TypeScript versions of the
;; same computations (scan.ts, ops.ts, mixer.ts) are the references; the tests compare the two.
;;
;; 1. The selective scan: forward, and backward with checkpoint recompute, for Longhorn's diagonal (paper eq. 9) and
;;    exact (paper eq. 7) transitions and Mamba's: same recurrences, checkpointing and adjoint as ../scan.ts.
;; 2. The elementwise parts of the block (causal conv + SiLU, the SiLU(z) gate, the rank-dt_rank Δ projection)
;;    and the cross-entropy.
;;
;; Scan layout:
;; Vectorised over channels, not over the state: the state of one sequence is stored transposed, S[j, i]
;; (j < n state index, i < d channel), so that a vector holds 4 channels of one state column. Then
;;   - per-channel scalars (ε_i, x_i, y_i, ∂ε_i, ...) are plain vector loads, and
;;   - the sums over j that the recurrences need (y_i = Σ_j S[j,i] q_j, k·s_i) are vertical adds: no shuffles.
;; Per-time-step key/query scalars are pre-splatted once per step into a small table kv (k_j², k_j, q_j).
;; Only the sums over channels (∂k_j, ∂q_j) need a horizontal add, once per (t, j).
;;
;; All pointers are byte offsets into this module's memory; arrays are f32 and row-major:
;;   x, c, gy, y, gx, gz: [B, L, d]   (c = ε or Δ, the step coefficient, computed beforehand)
;;   k, q, gk, gq:        [B, L, n]
;;   ckpt:                [B, nSeg, n, d] (S before steps 0, C, 2C, ...; nSeg = ceil(L / C))
;;   A, gA (Mamba):       [n, d] (A = −exp(A_log), transposed)
;; d must be a multiple of 4. kind: 0 = longhorn-diag, 1 = longhorn-exact, 2 = mamba (c = Δ).
(module
  (memory (export "memory") 1)

  ;; kv[j] = (splat k_j², splat k_j, splat q_j), 48 bytes per j. Returns ‖k‖².
  (func $prep_kv (param $k i32) (param $q i32) (param $n i32) (param $kv i32) (result f32)
    (local $j i32) (local $kj f32) (local $kk f32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $kj (f32.load (local.get $k)))
      (v128.store (local.get $kv) (f32x4.splat (f32.mul (local.get $kj) (local.get $kj))))
      (v128.store offset=16 (local.get $kv) (f32x4.splat (local.get $kj)))
      (v128.store offset=32 (local.get $kv) (f32x4.splat (f32.load (local.get $q))))
      (local.set $kk (f32.add (local.get $kk) (f32.mul (local.get $kj) (local.get $kj))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (local.set $q (i32.add (local.get $q) (i32.const 4)))
      (local.set $kv (i32.add (local.get $kv) (i32.const 48)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $next)))
    (local.get $kk))

  ;; e^x for four lanes (Cephes expf: x = n ln2 + r, |r| ≤ ln2/2, degree-6 polynomial, 2^n via the exponent
  ;; bits: adding 1.5·2²³ + 127 to the integral float n leaves n + 127 in the low mantissa bits, and shifting them
  ;; left by 23 gives the bit pattern of 2^n); relative error ~1e-7. x is clamped to [−87, 88] so 2^n stays a normal float: e^x underflows to
  ;; ~1.6e−38 rather than 0 and saturates at ~1.65e38 (callers only form 1/(1 + e^x + ...) and e^x/Σ).
  (func $exp4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (f32x4.min (local.get $x) (v128.const f32x4 88 88 88 88)) (v128.const f32x4 -87 -87 -87 -87)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
    (local.set $r (f32x4.sub (f32x4.sub (local.get $x)
      (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
      (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $r)) (local.get $r)) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p)
      (i32x4.shl (f32x4.add (local.get $n) (v128.const f32x4 12583039 12583039 12583039 12583039)) (i32.const 23))))

  ;; ε = 1/(1 + e^{−z} + ‖k‖²) = β/(1 + β‖k‖²), β = sigmoid z, for every (row, channel): c[r, i] from z[r, i],
  ;; k[r, :]. rows = B·L; d a multiple of 4.
  (func $longhorn_coef (export "longhorn_coef") (param $rows i32) (param $d i32) (param $n i32)
    (param $z i32) (param $k i32) (param $c i32)
    (local $r i32) (local $i i32) (local $rowb i32) (local $kk f32) (local $j i32) (local $kj f32) (local $one v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $kk (f32.const 1))
      (local.set $j (i32.const 0))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $kj (f32.load (local.get $k)))
        (local.set $kk (f32.add (local.get $kk) (f32.mul (local.get $kj) (local.get $kj))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $jnext)))
      (local.set $one (f32x4.splat (local.get $kk)))
      (local.set $i (i32.const 0))
      (block $idone (loop $inext
        (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
        (v128.store (i32.add (local.get $c) (local.get $i))
          (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (local.get $one)
            (call $exp4 (f32x4.neg (v128.load (i32.add (local.get $z) (local.get $i))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $inext)))
      (local.set $z (i32.add (local.get $z) (local.get $rowb)))
      (local.set $c (i32.add (local.get $c) (local.get $rowb)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; One diagonal step for all channels: S_out[j,i] = (1 − ε_i k_j²) S_in[j,i] + ε_i x_i k_j;
  ;; y_i = Σ_j S_out[j,i] q_j (skipped when y = 0). S_in may equal S_out.
  (func $step_diag (param $sin i32) (param $sout i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $kv i32) (param $y i32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $kend i32)
    (local $e v128) (local $ex v128) (local $acc v128) (local $v v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      (local.set $e (v128.load (i32.add (local.get $c) (local.get $i))))
      (local.set $ex (f32x4.mul (local.get $e) (v128.load (i32.add (local.get $x) (local.get $i)))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $v
          (f32x4.add
            (f32x4.mul
              (f32x4.sub (v128.const f32x4 1 1 1 1) (f32x4.mul (local.get $e) (v128.load (local.get $kp))))
              (v128.load (i32.add (local.get $sin) (local.get $off))))
            (f32x4.mul (local.get $ex) (v128.load offset=16 (local.get $kp)))))
        (v128.store (i32.add (local.get $sout) (local.get $off)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $kp)))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (br $jnext)))
      (if (local.get $y) (then (v128.store (i32.add (local.get $y) (local.get $i)) (local.get $acc))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext))))

  ;; One exact step: s_out = s_in + ε (x − k·s_in) k per channel (the rank-1 implicit update); y as above.
  (func $step_exact (param $sin i32) (param $sout i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $kv i32) (param $y i32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $kend i32)
    (local $ks v128) (local $er v128) (local $acc v128) (local $v v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      ;; ks_i = Σ_j k_j S_in[j,i]
      (local.set $ks (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $ks (f32x4.add (local.get $ks)
          (f32x4.mul (v128.load offset=16 (local.get $kp)) (v128.load (i32.add (local.get $sin) (local.get $off))))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (br $jnext)))
      ;; er = ε (x − ks): the step along k
      (local.set $er (f32x4.mul (v128.load (i32.add (local.get $c) (local.get $i)))
        (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $ks))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (block $jdone2 (loop $jnext2
        (br_if $jdone2 (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $v (f32x4.add (v128.load (i32.add (local.get $sin) (local.get $off)))
          (f32x4.mul (local.get $er) (v128.load offset=16 (local.get $kp)))))
        (v128.store (i32.add (local.get $sout) (local.get $off)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $kp)))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (br $jnext2)))
      (if (local.get $y) (then (v128.store (i32.add (local.get $y) (local.get $i)) (local.get $acc))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext))))

  ;; One Mamba step (Gu & Dao 2023, eq. 4, ZOH as in the official selective scan): with Δ = c,
  ;; S_out[j,i] = e^{Δ_i A[j,i]} S_in[j,i] + Δ_i x_i k_j;  y_i = Σ_j S_out[j,i] q_j. A is stored transposed [n, d].
  (func $step_mamba (param $sin i32) (param $sout i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $kv i32) (param $y i32) (param $A i32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $kend i32)
    (local $dt v128) (local $dx v128) (local $acc v128) (local $v v128) (local $u v128) (local $a v128) (local $n4 v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      (local.set $dt (v128.load (i32.add (local.get $c) (local.get $i))))
      (local.set $dx (f32x4.mul (local.get $dt) (v128.load (i32.add (local.get $x) (local.get $i)))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $u (f32x4.mul (local.get $dt) (v128.load (i32.add (local.get $A) (local.get $off)))))
        ;; $a = e^$u ($exp4 inlined: V8 does not inline wasm calls, and this is the step's hottest line)
        (local.set $u (f32x4.max (f32x4.min (local.get $u) (v128.const f32x4 88 88 88 88)) (v128.const f32x4 -87 -87 -87 -87)))
        (local.set $n4 (f32x4.nearest (f32x4.mul (local.get $u) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
        (local.set $u (f32x4.sub (f32x4.sub (local.get $u)
          (f32x4.mul (local.get $n4) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
          (f32x4.mul (local.get $n4) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
        (local.set $a (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $u)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
        (local.set $a (f32x4.mul (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $a) (local.get $u)) (local.get $u)) (local.get $u))
          (v128.const f32x4 1 1 1 1))
          (i32x4.shl (f32x4.add (local.get $n4) (v128.const f32x4 12583039 12583039 12583039 12583039)) (i32.const 23))))
        (local.set $v (f32x4.add
          (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $sin) (local.get $off))))
          (f32x4.mul (local.get $dx) (v128.load offset=16 (local.get $kp)))))
        (v128.store (i32.add (local.get $sout) (local.get $off)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $kp)))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (br $jnext)))
      (if (local.get $y) (then (v128.store (i32.add (local.get $y) (local.get $i)) (local.get $acc))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext))))

  ;; kind: 0 = longhorn-diag, 1 = longhorn-exact, 2 = mamba (A: [n, d], else unused).
  (func $step (param $kind i32) (param $sin i32) (param $sout i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $kv i32) (param $y i32) (param $A i32)
    (if (i32.eq (local.get $kind) (i32.const 2))
      (then (call $step_mamba (local.get $sin) (local.get $sout) (local.get $d) (local.get $n)
        (local.get $x) (local.get $c) (local.get $kv) (local.get $y) (local.get $A)))
      (else (if (local.get $kind)
        (then (call $step_exact (local.get $sin) (local.get $sout) (local.get $d) (local.get $n)
          (local.get $x) (local.get $c) (local.get $kv) (local.get $y)))
        (else (call $step_diag (local.get $sin) (local.get $sout) (local.get $d) (local.get $n)
          (local.get $x) (local.get $c) (local.get $kv) (local.get $y)))))))

  ;; Backward of one Mamba step, same contract as $back_diag except: gz receives ∂Δ itself (the caller applies
  ;; softplus' = σ(z)), ∂A accumulates into gA [n, d], and there is no ‖k‖² term (returns 0).
  (func $back_mamba (param $G i32) (param $st i32) (param $sp i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $gy i32) (param $kv i32) (param $acc i32)
    (param $gx i32) (param $gz i32) (param $A i32) (param $gA i32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $ap i32) (local $kend i32)
    (local $dt v128) (local $xv v128) (local $gyv v128) (local $gc v128) (local $gkx v128) (local $dtx v128)
    (local $g v128) (local $kj v128) (local $Aj v128) (local $a v128) (local $ga v128) (local $u v128) (local $n4 v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      (local.set $dt (v128.load (i32.add (local.get $c) (local.get $i))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $dtx (f32x4.mul (local.get $dt) (local.get $xv)))
      (local.set $gyv (v128.load (i32.add (local.get $gy) (local.get $i))))
      (local.set $gc (v128.const f32x4 0 0 0 0))
      (local.set $gkx (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (local.set $ap (local.get $acc))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $kj (v128.load offset=16 (local.get $kp)))
        (local.set $Aj (v128.load (i32.add (local.get $A) (local.get $off))))
        (local.set $u (f32x4.mul (local.get $dt) (local.get $Aj)))
        ;; $a = e^$u ($exp4 inlined: V8 does not inline wasm calls, and this is the step's hottest line)
        (local.set $u (f32x4.max (f32x4.min (local.get $u) (v128.const f32x4 88 88 88 88)) (v128.const f32x4 -87 -87 -87 -87)))
        (local.set $n4 (f32x4.nearest (f32x4.mul (local.get $u) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
        (local.set $u (f32x4.sub (f32x4.sub (local.get $u)
          (f32x4.mul (local.get $n4) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
          (f32x4.mul (local.get $n4) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
        (local.set $a (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $u)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
        (local.set $a (f32x4.add (f32x4.mul (local.get $a) (local.get $u)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
        (local.set $a (f32x4.mul (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $a) (local.get $u)) (local.get $u)) (local.get $u))
          (v128.const f32x4 1 1 1 1))
          (i32x4.shl (f32x4.add (local.get $n4) (v128.const f32x4 12583039 12583039 12583039 12583039)) (i32.const 23))))
        (local.set $g (f32x4.add (v128.load (i32.add (local.get $G) (local.get $off)))
          (f32x4.mul (local.get $gyv) (v128.load offset=32 (local.get $kp)))))
        (v128.store offset=16 (local.get $ap) (f32x4.add (v128.load offset=16 (local.get $ap))
          (f32x4.mul (local.get $gyv) (v128.load (i32.add (local.get $st) (local.get $off))))))
        ;; ga = g S_{t−1} a:  ∂Δ += ga A + g x k_j;  ∂A += ga Δ
        (local.set $ga (f32x4.mul (f32x4.mul (local.get $g) (v128.load (i32.add (local.get $sp) (local.get $off)))) (local.get $a)))
        (local.set $gc (f32x4.add (local.get $gc)
          (f32x4.add (f32x4.mul (local.get $ga) (local.get $Aj)) (f32x4.mul (f32x4.mul (local.get $g) (local.get $xv)) (local.get $kj)))))
        (v128.store (i32.add (local.get $gA) (local.get $off))
          (f32x4.add (v128.load (i32.add (local.get $gA) (local.get $off))) (f32x4.mul (local.get $ga) (local.get $dt))))
        (local.set $gkx (f32x4.add (local.get $gkx) (f32x4.mul (local.get $g) (local.get $kj))))
        ;; ∂k_j += g Δ x
        (v128.store (local.get $ap) (f32x4.add (v128.load (local.get $ap)) (f32x4.mul (local.get $g) (local.get $dtx))))
        (v128.store (i32.add (local.get $G) (local.get $off)) (f32x4.mul (local.get $a) (local.get $g)))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
        (br $jnext)))
      (v128.store (i32.add (local.get $gx) (local.get $i)) (f32x4.mul (local.get $dt) (local.get $gkx)))
      (v128.store (i32.add (local.get $gz) (local.get $i)) (local.get $gc))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext))))

  ;; Backward of one diagonal step for all channels. G holds ∂L/∂S_t from the future (carried back through
  ;; step t+1); on return it holds ∂L/∂S_{t−1}. st = S_t, sp = S_{t−1}. acc[j] = (∂k_j, ∂q_j) vector partial
  ;; sums over channels. Writes ∂x, and ∂z_β ($finish_coef); returns ∂L/∂‖k‖² = −Σ_i ∂ε_i ε_i².
  (func $back_diag (param $G i32) (param $st i32) (param $sp i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $gy i32) (param $kv i32) (param $acc i32)
    (param $gx i32) (param $gz i32) (param $z i32) (param $kk f32) (result f32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $ap i32) (local $kend i32)
    (local $e v128) (local $xv v128) (local $ex v128) (local $gyv v128) (local $gc v128) (local $gkx v128)
    (local $g v128) (local $s v128) (local $kj v128) (local $k2 v128) (local $gkk v128) (local $t v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      (local.set $e (v128.load (i32.add (local.get $c) (local.get $i))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $ex (f32x4.mul (local.get $e) (local.get $xv)))
      (local.set $gyv (v128.load (i32.add (local.get $gy) (local.get $i))))
      (local.set $gc (v128.const f32x4 0 0 0 0))
      (local.set $gkx (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (local.set $ap (local.get $acc))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $k2 (v128.load (local.get $kp)))
        (local.set $kj (v128.load offset=16 (local.get $kp)))
        ;; y = S_t q: g = G + gy q_j;  ∂q_j += gy S_t
        (local.set $g (f32x4.add (v128.load (i32.add (local.get $G) (local.get $off)))
          (f32x4.mul (local.get $gyv) (v128.load offset=32 (local.get $kp)))))
        (v128.store offset=16 (local.get $ap) (f32x4.add (v128.load offset=16 (local.get $ap))
          (f32x4.mul (local.get $gyv) (v128.load (i32.add (local.get $st) (local.get $off))))))
        (local.set $s (v128.load (i32.add (local.get $sp) (local.get $off))))
        ;; ∂ε += g (x k − k² s)   (∂a/∂ε = −k², ∂b/∂ε = x k)
        (local.set $gc (f32x4.add (local.get $gc) (f32x4.mul (local.get $g)
          (f32x4.sub (f32x4.mul (local.get $xv) (local.get $kj)) (f32x4.mul (local.get $k2) (local.get $s))))))
        (local.set $gkx (f32x4.add (local.get $gkx) (f32x4.mul (local.get $g) (local.get $kj))))
        ;; ∂k_j += g ε (x − 2 k_j s)
        (local.set $t (f32x4.mul (local.get $e) (f32x4.mul (local.get $kj) (local.get $s))))
        (v128.store (local.get $ap) (f32x4.add (v128.load (local.get $ap))
          (f32x4.mul (local.get $g) (f32x4.sub (local.get $ex) (f32x4.add (local.get $t) (local.get $t))))))
        ;; G ← (1 − ε k²) g
        (v128.store (i32.add (local.get $G) (local.get $off))
          (f32x4.mul (f32x4.sub (v128.const f32x4 1 1 1 1) (f32x4.mul (local.get $e) (local.get $k2))) (local.get $g)))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
        (br $jnext)))
      (v128.store (i32.add (local.get $gx) (local.get $i)) (f32x4.mul (local.get $e) (local.get $gkx)))
      (call $finish_coef (local.get $gz) (local.get $z) (local.get $i) (local.get $gc) (local.get $e) (local.get $kk))
      (local.set $gkk (f32x4.sub (local.get $gkk) (f32x4.mul (local.get $gc) (f32x4.mul (local.get $e) (local.get $e)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext)))
    (call $hsum (local.get $gkk)))

  ;; ∂z_β = ∂ε · ∂ε/∂z_β with ∂ε/∂z_β = e^{−z} ε² = ε / (1 + (1 + ‖k‖²) e^{z}): unlike ε (1 − (1 + ‖k‖²) ε) it does
  ;; not cancel catastrophically as β → 1, and e^{z} saturating (exp4's clamp) gives ~0, the right limit.
  (func $finish_coef (param $gz i32) (param $z i32) (param $i i32) (param $gc v128) (param $e v128) (param $kk f32)
    (v128.store (i32.add (local.get $gz) (local.get $i))
      (f32x4.div (f32x4.mul (local.get $gc) (local.get $e))
        (f32x4.add (v128.const f32x4 1 1 1 1)
          (f32x4.mul (f32x4.splat (f32.add (f32.const 1) (local.get $kk)))
            (call $exp4 (v128.load (i32.add (local.get $z) (local.get $i)))))))))

  ;; Backward of one exact step (s_t = s + ε r k, r = x − k·s), same contract as $back_diag.
  (func $back_exact (param $G i32) (param $st i32) (param $sp i32) (param $d i32) (param $n i32)
    (param $x i32) (param $c i32) (param $gy i32) (param $kv i32) (param $acc i32)
    (param $gx i32) (param $gz i32) (param $z i32) (param $kk f32) (result f32)
    (local $i i32) (local $rowb i32) (local $off i32) (local $kp i32) (local $ap i32) (local $kend i32)
    (local $e v128) (local $gyv v128) (local $kG v128) (local $ks v128) (local $r v128) (local $gr v128)
    (local $er v128) (local $g v128) (local $s v128) (local $kj v128) (local $gc v128) (local $gkk v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $kend (i32.add (local.get $kv) (i32.mul (local.get $n) (i32.const 48))))
    (block $idone (loop $inext
      (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
      (local.set $e (v128.load (i32.add (local.get $c) (local.get $i))))
      (local.set $gyv (v128.load (i32.add (local.get $gy) (local.get $i))))
      (local.set $kG (v128.const f32x4 0 0 0 0))
      (local.set $ks (v128.const f32x4 0 0 0 0))
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (local.set $ap (local.get $acc))
      ;; pass 1: G += gy q (output reads S_t), ∂q_j += gy S_t, kG = k·G, ks = k·S_{t−1}
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $kj (v128.load offset=16 (local.get $kp)))
        (local.set $g (f32x4.add (v128.load (i32.add (local.get $G) (local.get $off)))
          (f32x4.mul (local.get $gyv) (v128.load offset=32 (local.get $kp)))))
        (v128.store (i32.add (local.get $G) (local.get $off)) (local.get $g))
        (v128.store offset=16 (local.get $ap) (f32x4.add (v128.load offset=16 (local.get $ap))
          (f32x4.mul (local.get $gyv) (v128.load (i32.add (local.get $st) (local.get $off))))))
        (local.set $kG (f32x4.add (local.get $kG) (f32x4.mul (local.get $kj) (local.get $g))))
        (local.set $ks (f32x4.add (local.get $ks)
          (f32x4.mul (local.get $kj) (v128.load (i32.add (local.get $sp) (local.get $off))))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
        (br $jnext)))
      (local.set $r (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $ks)))
      (local.set $gr (f32x4.mul (local.get $e) (local.get $kG)))
      (local.set $er (f32x4.mul (local.get $e) (local.get $r)))
      ;; pass 2: ∂k_j += ε r g − gr s_{t−1};  G ← (I − ε k kᵀ) G
      (local.set $off (local.get $i))
      (local.set $kp (local.get $kv))
      (local.set $ap (local.get $acc))
      (block $jdone2 (loop $jnext2
        (br_if $jdone2 (i32.ge_u (local.get $kp) (local.get $kend)))
        (local.set $g (v128.load (i32.add (local.get $G) (local.get $off))))
        (local.set $s (v128.load (i32.add (local.get $sp) (local.get $off))))
        (v128.store (local.get $ap) (f32x4.add (v128.load (local.get $ap))
          (f32x4.sub (f32x4.mul (local.get $er) (local.get $g)) (f32x4.mul (local.get $gr) (local.get $s)))))
        (v128.store (i32.add (local.get $G) (local.get $off))
          (f32x4.sub (local.get $g) (f32x4.mul (local.get $gr) (v128.load offset=16 (local.get $kp)))))
        (local.set $off (i32.add (local.get $off) (local.get $rowb)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 48)))
        (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
        (br $jnext2)))
      (local.set $gc (f32x4.mul (local.get $r) (local.get $kG)))
      (v128.store (i32.add (local.get $gx) (local.get $i)) (local.get $gr))
      (call $finish_coef (local.get $gz) (local.get $z) (local.get $i) (local.get $gc) (local.get $e) (local.get $kk))
      (local.set $gkk (f32x4.sub (local.get $gkk) (f32x4.mul (local.get $gc) (f32x4.mul (local.get $e) (local.get $e)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $inext)))
    (call $hsum (local.get $gkk)))

  ;; Forward over a batch with zero initial state: y, and S before every C-th step into ckpt.
  ;; Scratch: S (d·n floats), kv (48·n bytes).
  (func (export "scan_fwd")
    (param $kind i32) (param $B i32) (param $L i32) (param $d i32) (param $n i32) (param $chunk i32)
    (param $x i32) (param $c i32) (param $k i32) (param $q i32) (param $y i32) (param $ckpt i32)
    (param $S i32) (param $kv i32) (param $A i32)
    (local $b i32) (local $t i32) (local $dn4 i32) (local $nSeg i32) (local $row i32) (local $kr i32)
    (local $cp i32)
    (local.set $dn4 (i32.shl (i32.mul (local.get $d) (local.get $n)) (i32.const 2)))
    (local.set $nSeg (i32.div_u (i32.sub (i32.add (local.get $L) (local.get $chunk)) (i32.const 1)) (local.get $chunk)))
    (local.set $cp (local.get $ckpt))
    (block $bdone (loop $bnext
      (br_if $bdone (i32.ge_u (local.get $b) (local.get $B)))
      (memory.fill (local.get $S) (i32.const 0) (local.get $dn4))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tnext
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $L)))
        (if (i32.eqz (i32.rem_u (local.get $t) (local.get $chunk)))
          (then
            (memory.copy (local.get $cp) (local.get $S) (local.get $dn4))
            (local.set $cp (i32.add (local.get $cp) (local.get $dn4)))))
        (local.set $row (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $d)) (i32.const 2)))
        (local.set $kr (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $n)) (i32.const 2)))
        (drop (call $prep_kv (i32.add (local.get $k) (local.get $kr)) (i32.add (local.get $q) (local.get $kr)) (local.get $n) (local.get $kv)))
        (call $step (local.get $kind) (local.get $S) (local.get $S) (local.get $d) (local.get $n)
          (i32.add (local.get $x) (local.get $row)) (i32.add (local.get $c) (local.get $row))
          (local.get $kv) (i32.add (local.get $y) (local.get $row)) (local.get $A))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tnext)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bnext))))

  ;; Backward: per sequence, segments in reverse; each segment's states are recomputed from its checkpoint into
  ;; buf (C+1 states), then the adjoint runs back through it. Writes gx, gz (∂z_β), gk, gq.
  ;; Scratch: buf ((C+1)·d·n floats), G (d·n floats), kv (48·n bytes), acc (32·n bytes).
  (func (export "scan_bwd")
    (param $kind i32) (param $B i32) (param $L i32) (param $d i32) (param $n i32) (param $chunk i32)
    (param $x i32) (param $c i32) (param $k i32) (param $q i32) (param $gy i32) (param $ckpt i32)
    (param $buf i32) (param $G i32) (param $kv i32) (param $acc i32)
    (param $gx i32) (param $gz i32) (param $gk i32) (param $gq i32) (param $A i32) (param $gA i32) (param $z i32)
    (local $b i32) (local $t i32) (local $seg i32) (local $t0 i32) (local $t1 i32) (local $dn4 i32) (local $nSeg i32)
    (local $row i32) (local $kr i32) (local $st i32) (local $kk f32) (local $gkk f32) (local $j i32) (local $ap i32)
    (local.set $dn4 (i32.shl (i32.mul (local.get $d) (local.get $n)) (i32.const 2)))
    (local.set $nSeg (i32.div_u (i32.sub (i32.add (local.get $L) (local.get $chunk)) (i32.const 1)) (local.get $chunk)))
    (block $bdone (loop $bnext
      (br_if $bdone (i32.ge_u (local.get $b) (local.get $B)))
      (memory.fill (local.get $G) (i32.const 0) (local.get $dn4))
      (local.set $seg (local.get $nSeg))
      (block $sdone (loop $snext
        (br_if $sdone (i32.eqz (local.get $seg)))
        (local.set $seg (i32.sub (local.get $seg) (i32.const 1)))
        (local.set $t0 (i32.mul (local.get $seg) (local.get $chunk)))
        (local.set $t1 (select (local.get $L) (i32.add (local.get $t0) (local.get $chunk))
          (i32.lt_u (local.get $L) (i32.add (local.get $t0) (local.get $chunk)))))
        ;; recompute S_{t0−1} .. S_{t1−1} into buf
        (memory.copy (local.get $buf)
          (i32.add (local.get $ckpt) (i32.mul (i32.add (i32.mul (local.get $b) (local.get $nSeg)) (local.get $seg)) (local.get $dn4)))
          (local.get $dn4))
        (local.set $t (local.get $t0))
        (block $rdone (loop $rnext
          (br_if $rdone (i32.ge_u (local.get $t) (local.get $t1)))
          (local.set $row (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $d)) (i32.const 2)))
          (local.set $kr (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $n)) (i32.const 2)))
          (local.set $st (i32.add (local.get $buf) (i32.mul (i32.sub (local.get $t) (local.get $t0)) (local.get $dn4))))
          (drop (call $prep_kv (i32.add (local.get $k) (local.get $kr)) (i32.add (local.get $q) (local.get $kr)) (local.get $n) (local.get $kv)))
          (call $step (local.get $kind) (local.get $st) (i32.add (local.get $st) (local.get $dn4)) (local.get $d) (local.get $n)
            (i32.add (local.get $x) (local.get $row)) (i32.add (local.get $c) (local.get $row)) (local.get $kv) (i32.const 0) (local.get $A))
          (local.set $t (i32.add (local.get $t) (i32.const 1)))
          (br $rnext)))
        ;; reverse-time adjoint through the segment
        (local.set $t (local.get $t1))
        (block $adone (loop $anext
          (br_if $adone (i32.le_u (local.get $t) (local.get $t0)))
          (local.set $t (i32.sub (local.get $t) (i32.const 1)))
          (local.set $row (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $d)) (i32.const 2)))
          (local.set $kr (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $n)) (i32.const 2)))
          ;; S_t sits at slot t − t0 + 1, S_{t−1} at slot t − t0
          (local.set $st (i32.add (local.get $buf) (i32.mul (i32.add (i32.sub (local.get $t) (local.get $t0)) (i32.const 1)) (local.get $dn4))))
          (local.set $kk (call $prep_kv (i32.add (local.get $k) (local.get $kr)) (i32.add (local.get $q) (local.get $kr)) (local.get $n) (local.get $kv)))
          (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $n) (i32.const 5)))
          (local.set $gkk (f32.const 0))
          (if (i32.eq (local.get $kind) (i32.const 2))
            (then (call $back_mamba (local.get $G) (local.get $st) (i32.sub (local.get $st) (local.get $dn4))
              (local.get $d) (local.get $n) (i32.add (local.get $x) (local.get $row)) (i32.add (local.get $c) (local.get $row))
              (i32.add (local.get $gy) (local.get $row)) (local.get $kv) (local.get $acc)
              (i32.add (local.get $gx) (local.get $row)) (i32.add (local.get $gz) (local.get $row)) (local.get $A) (local.get $gA)))
          (else (if (local.get $kind)
            (then (local.set $gkk (call $back_exact (local.get $G) (local.get $st) (i32.sub (local.get $st) (local.get $dn4))
              (local.get $d) (local.get $n) (i32.add (local.get $x) (local.get $row)) (i32.add (local.get $c) (local.get $row))
              (i32.add (local.get $gy) (local.get $row)) (local.get $kv) (local.get $acc)
              (i32.add (local.get $gx) (local.get $row)) (i32.add (local.get $gz) (local.get $row)) (i32.add (local.get $z) (local.get $row)) (local.get $kk))))
            (else (local.set $gkk (call $back_diag (local.get $G) (local.get $st) (i32.sub (local.get $st) (local.get $dn4))
              (local.get $d) (local.get $n) (i32.add (local.get $x) (local.get $row)) (i32.add (local.get $c) (local.get $row))
              (i32.add (local.get $gy) (local.get $row)) (local.get $kv) (local.get $acc)
              (i32.add (local.get $gx) (local.get $row)) (i32.add (local.get $gz) (local.get $row)) (i32.add (local.get $z) (local.get $row)) (local.get $kk)))))))
          ;; ∂k_j = Σ_i (direct) + 2 k_j ∂‖k‖²;  ∂q_j = Σ_i
          (local.set $j (i32.const 0))
          (local.set $ap (local.get $acc))
          (block $jdone (loop $jnext
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
            (f32.store (i32.add (local.get $gk) (i32.add (local.get $kr) (i32.shl (local.get $j) (i32.const 2))))
              (f32.add (call $hsum (v128.load (local.get $ap)))
                (f32.mul (f32.mul (f32.const 2) (local.get $gkk))
                  (f32.load (i32.add (local.get $k) (i32.add (local.get $kr) (i32.shl (local.get $j) (i32.const 2))))))))
            (f32.store (i32.add (local.get $gq) (i32.add (local.get $kr) (i32.shl (local.get $j) (i32.const 2))))
              (call $hsum (v128.load offset=16 (local.get $ap))))
            (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jnext)))
          (br $anext)))
        (br $snext)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bnext))))

  ;; ---------------------------------------------------------------------------------------------------------------
  ;; Block elementwise ops. Rows of d channels (d a multiple of 4); `stride` is the row length in floats of an input
  ;; read as a column slice (the x or z half of in_proj's [rows, 2d] output).

  ;; σ(u) = 1/(1 + e^{−u})
  (func $sigmoid4 (param $u v128) (result v128)
    (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.neg (local.get $u))))))

  ;; Causal depthwise conv (kernel K, PyTorch Conv1d(groups=d, padding=K−1) truncated to L) and SiLU:
  ;;   xc[b,t,i] = bias_i + Σ_w W[w,i] in[b, t−K+1+w, i];  sig = σ(xc);  xs = xc·sig.
  ;; W is the conv weight transposed to [K, d]. in rows have `stride` floats (first d used).
  (func (export "conv_silu_fwd") (param $B i32) (param $L i32) (param $d i32) (param $K i32) (param $stride i32)
    (param $in i32) (param $w i32) (param $bias i32) (param $xc i32) (param $sig i32) (param $xs i32)
    (local $b i32) (local $t i32) (local $i i32) (local $wi i32) (local $src i32) (local $rowb i32) (local $sb i32)
    (local $o i32) (local $acc v128) (local $s v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $sb (i32.shl (local.get $stride) (i32.const 2)))
    (block $bdone (loop $bnext
      (br_if $bdone (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tnext
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $L)))
        (local.set $o (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $rowb)))
        (local.set $i (i32.const 0))
        (block $idone (loop $inext
          (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
          (local.set $acc (v128.load (i32.add (local.get $bias) (local.get $i))))
          (local.set $wi (i32.const 0))
          (block $wdone (loop $wnext
            (br_if $wdone (i32.ge_u (local.get $wi) (local.get $K)))
            ;; src = t − K + 1 + wi (skip positions before the sequence start)
            (local.set $src (i32.add (i32.sub (local.get $t) (local.get $K)) (i32.add (local.get $wi) (i32.const 1))))
            (if (i32.ge_s (local.get $src) (i32.const 0))
              (then (local.set $acc (f32x4.add (local.get $acc)
                (f32x4.mul (v128.load (i32.add (i32.add (local.get $w) (i32.mul (local.get $wi) (local.get $rowb))) (local.get $i)))
                  (v128.load (i32.add (i32.add (local.get $in)
                    (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $src)) (local.get $sb))) (local.get $i))))))))
            (local.set $wi (i32.add (local.get $wi) (i32.const 1)))
            (br $wnext)))
          (local.set $s (call $sigmoid4 (local.get $acc)))
          (v128.store (i32.add (local.get $xc) (i32.add (local.get $o) (local.get $i))) (local.get $acc))
          (v128.store (i32.add (local.get $sig) (i32.add (local.get $o) (local.get $i))) (local.get $s))
          (v128.store (i32.add (local.get $xs) (i32.add (local.get $o) (local.get $i))) (f32x4.mul (local.get $acc) (local.get $s)))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $inext)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tnext)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bnext))))

  ;; Backward of conv_silu_fwd. gxs = ∂loss/∂xs [rows, d]; SiLU' = σ(1 + xc(1 − σ)). Writes gin [rows, d]
  ;; (zeroed here), and sets gw [K, d] (transposed), gbias [d] to this call's sums.
  (func (export "conv_silu_bwd") (param $B i32) (param $L i32) (param $d i32) (param $K i32) (param $stride i32)
    (param $in i32) (param $w i32) (param $gxs i32) (param $xc i32) (param $sig i32)
    (param $gin i32) (param $gw i32) (param $gbias i32)
    (local $b i32) (local $t i32) (local $i i32) (local $wi i32) (local $src i32) (local $rowb i32) (local $sb i32)
    (local $o i32) (local $g v128) (local $s v128) (local $p i32) (local $q i32)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (local.set $sb (i32.shl (local.get $stride) (i32.const 2)))
    (memory.fill (local.get $gin) (i32.const 0) (i32.mul (i32.mul (local.get $B) (local.get $L)) (local.get $rowb)))
    (memory.fill (local.get $gw) (i32.const 0) (i32.mul (local.get $K) (local.get $rowb)))
    (memory.fill (local.get $gbias) (i32.const 0) (local.get $rowb))
    (block $bdone (loop $bnext
      (br_if $bdone (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tnext
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $L)))
        (local.set $o (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $t)) (local.get $rowb)))
        (local.set $i (i32.const 0))
        (block $idone (loop $inext
          (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
          (local.set $s (v128.load (i32.add (local.get $sig) (i32.add (local.get $o) (local.get $i)))))
          (local.set $g (f32x4.mul (v128.load (i32.add (local.get $gxs) (i32.add (local.get $o) (local.get $i))))
            (f32x4.mul (local.get $s) (f32x4.add (v128.const f32x4 1 1 1 1)
              (f32x4.mul (v128.load (i32.add (local.get $xc) (i32.add (local.get $o) (local.get $i))))
                (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $s)))))))
          (v128.store (i32.add (local.get $gbias) (local.get $i)) (f32x4.add (v128.load (i32.add (local.get $gbias) (local.get $i))) (local.get $g)))
          (local.set $wi (i32.const 0))
          (block $wdone (loop $wnext
            (br_if $wdone (i32.ge_u (local.get $wi) (local.get $K)))
            (local.set $src (i32.add (i32.sub (local.get $t) (local.get $K)) (i32.add (local.get $wi) (i32.const 1))))
            (if (i32.ge_s (local.get $src) (i32.const 0))
              (then
                (local.set $p (i32.add (i32.mul (local.get $wi) (local.get $rowb)) (local.get $i)))
                (local.set $q (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $src)) (local.get $rowb)))
                ;; ∂W[w,i] += g · in[src, i];  ∂in[src, i] += g · W[w,i]
                (v128.store (i32.add (local.get $gw) (local.get $p)) (f32x4.add (v128.load (i32.add (local.get $gw) (local.get $p)))
                  (f32x4.mul (local.get $g) (v128.load (i32.add (i32.add (local.get $in)
                    (i32.mul (i32.add (i32.mul (local.get $b) (local.get $L)) (local.get $src)) (local.get $sb))) (local.get $i))))))
                (v128.store (i32.add (local.get $gin) (i32.add (local.get $q) (local.get $i)))
                  (f32x4.add (v128.load (i32.add (local.get $gin) (i32.add (local.get $q) (local.get $i))))
                    (f32x4.mul (local.get $g) (v128.load (i32.add (local.get $w) (local.get $p))))))))
            (local.set $wi (i32.add (local.get $wi) (i32.const 1)))
            (br $wnext)))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $inext)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tnext)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bnext))))

  ;; Gate forward: y ← y + D ⊙ xs (in place), sigZ = σ(z), yg = y ⊙ z σ(z) (SiLU gate). z rows have `stride`
  ;; floats (first d used).
  (func (export "gate_fwd") (param $rows i32) (param $d i32) (param $stride i32)
    (param $y i32) (param $xs i32) (param $D i32) (param $z i32) (param $sigZ i32) (param $yg i32)
    (local $r i32) (local $i i32) (local $rowb i32) (local $o i32) (local $zr i32) (local $v v128) (local $zv v128) (local $s v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $o (i32.mul (local.get $r) (local.get $rowb)))
      (local.set $zr (i32.add (local.get $z) (i32.shl (i32.mul (local.get $r) (local.get $stride)) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $idone (loop $inext
        (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
        (local.set $v (f32x4.add (v128.load (i32.add (local.get $y) (i32.add (local.get $o) (local.get $i))))
          (f32x4.mul (v128.load (i32.add (local.get $D) (local.get $i))) (v128.load (i32.add (local.get $xs) (i32.add (local.get $o) (local.get $i)))))))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $o) (local.get $i))) (local.get $v))
        (local.set $zv (v128.load (i32.add (local.get $zr) (local.get $i))))
        (local.set $s (call $sigmoid4 (local.get $zv)))
        (v128.store (i32.add (local.get $sigZ) (i32.add (local.get $o) (local.get $i))) (local.get $s))
        (v128.store (i32.add (local.get $yg) (i32.add (local.get $o) (local.get $i)))
          (f32x4.mul (local.get $v) (f32x4.mul (local.get $zv) (local.get $s))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $inext)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  ;; Gate backward: from g = ∂loss/∂yg, gy = g z σ(z) and gz = g y SiLU'(z), SiLU' = σ(1 + z(1 − σ)).
  (func (export "gate_bwd") (param $rows i32) (param $d i32) (param $stride i32)
    (param $g i32) (param $z i32) (param $sigZ i32) (param $y i32) (param $gy i32) (param $gz i32)
    (local $r i32) (local $i i32) (local $rowb i32) (local $o i32) (local $zr i32) (local $gv v128) (local $zv v128) (local $s v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $o (i32.mul (local.get $r) (local.get $rowb)))
      (local.set $zr (i32.add (local.get $z) (i32.shl (i32.mul (local.get $r) (local.get $stride)) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $idone (loop $inext
        (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
        (local.set $gv (v128.load (i32.add (local.get $g) (i32.add (local.get $o) (local.get $i)))))
        (local.set $zv (v128.load (i32.add (local.get $zr) (local.get $i))))
        (local.set $s (v128.load (i32.add (local.get $sigZ) (i32.add (local.get $o) (local.get $i)))))
        (v128.store (i32.add (local.get $gy) (i32.add (local.get $o) (local.get $i)))
          (f32x4.mul (local.get $gv) (f32x4.mul (local.get $zv) (local.get $s))))
        (v128.store (i32.add (local.get $gz) (i32.add (local.get $o) (local.get $i)))
          (f32x4.mul (f32x4.mul (local.get $gv) (v128.load (i32.add (local.get $y) (i32.add (local.get $o) (local.get $i)))))
            (f32x4.mul (local.get $s) (f32x4.add (v128.const f32x4 1 1 1 1)
              (f32x4.mul (local.get $zv) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $s)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $inext)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  ;; ---------------------------------------------------------------------------------------------------------------
  ;; Cross-entropy over rows of V logits (V a multiple of 4), targets i32 (negative = not scored). Per scored row r,
  ;; stats[r] = (Σ_v e^{l_v − m}, m − l_target, hit) with m = max_v l_v and hit = 1 when the target is the first
  ;; argmax (the loss is log Σ + m − l_target; the caller takes the log). With grad ≠ 0 the row is overwritten by
  ;; ∂loss/∂logits = (softmax − onehot)·invCount, and unscored rows by zeros.
  (func (export "cross_entropy") (param $rows i32) (param $V i32) (param $logits i32) (param $targets i32)
    (param $invCount f32) (param $grad i32) (param $stats i32)
    (local $r i32) (local $row i32) (local $end i32) (local $p i32) (local $tgt i32) (local $vb i32)
    (local $mv v128) (local $sv v128) (local $e v128) (local $m f32) (local $lt f32) (local $hit f32) (local $sum f32)
    (local $x v128) (local $n4 v128)
    (local.set $vb (i32.shl (local.get $V) (i32.const 2)))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $row (i32.add (local.get $logits) (i32.mul (local.get $r) (local.get $vb))))
      (local.set $end (i32.add (local.get $row) (local.get $vb)))
      (local.set $tgt (i32.load (i32.add (local.get $targets) (i32.shl (local.get $r) (i32.const 2)))))
      (if (i32.lt_s (local.get $tgt) (i32.const 0))
        (then (if (local.get $grad) (then (memory.fill (local.get $row) (i32.const 0) (local.get $vb)))))
        (else
          ;; m = max (NaN propagates: the caller checks the stats)
          (local.set $mv (v128.load (local.get $row)))
          (local.set $p (i32.add (local.get $row) (i32.const 16)))
          (block $mdone (loop $mnext
            (br_if $mdone (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $mv (f32x4.max (local.get $mv) (v128.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $mnext)))
          (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
            (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
          (local.set $lt (f32.load (i32.add (local.get $row) (i32.shl (local.get $tgt) (i32.const 2)))))
          ;; hit: the target holds the max and no earlier logit equals it (argmax takes the first maximum)
          (local.set $hit (f32.const 0))
          (if (f32.eq (local.get $lt) (local.get $m))
            (then
              (local.set $hit (f32.const 1))
              (local.set $p (local.get $row))
              (block $hdone (loop $hnext
                (br_if $hdone (i32.ge_u (local.get $p) (i32.add (local.get $row) (i32.shl (local.get $tgt) (i32.const 2)))))
                (if (f32.eq (f32.load (local.get $p)) (local.get $m)) (then (local.set $hit (f32.const 0)) (br $hdone)))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br $hnext)))))
          ;; Σ e^{l − m}, keeping the exponentials in place when a gradient is wanted
          (local.set $mv (f32x4.splat (local.get $m)))
          (local.set $sv (v128.const f32x4 0 0 0 0))
          (local.set $p (local.get $row))
          (block $edone (loop $enext
            (br_if $edone (i32.ge_u (local.get $p) (local.get $end)))
            ;; e = exp(l − m), $exp4 inlined (the hottest loop of the step; V8 does not inline wasm calls)
            (local.set $x (f32x4.max (f32x4.sub (v128.load (local.get $p)) (local.get $mv)) (v128.const f32x4 -87 -87 -87 -87)))
            (local.set $n4 (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
            (local.set $x (f32x4.sub (f32x4.sub (local.get $x)
              (f32x4.mul (local.get $n4) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
              (f32x4.mul (local.get $n4) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
            (local.set $e (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
            (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $x)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
            (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $x)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
            (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $x)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
            (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $x)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
            (local.set $e (f32x4.add (f32x4.mul (local.get $e) (local.get $x)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
            (local.set $e (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $e) (local.get $x)) (local.get $x)) (local.get $x))
              (v128.const f32x4 1 1 1 1)))
            (local.set $e (f32x4.mul (local.get $e)
              (i32x4.shl (f32x4.add (local.get $n4) (v128.const f32x4 12583039 12583039 12583039 12583039)) (i32.const 23))))
            (if (local.get $grad) (then (v128.store (local.get $p) (local.get $e))))
            (local.set $sv (f32x4.add (local.get $sv) (local.get $e)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $enext)))
          (local.set $sum (call $hsum (local.get $sv)))
          (if (local.get $grad)
            (then
              (local.set $e (f32x4.splat (f32.div (local.get $invCount) (local.get $sum))))
              (local.set $p (local.get $row))
              (block $gdone (loop $gnext
                (br_if $gdone (i32.ge_u (local.get $p) (local.get $end)))
                (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $e)))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (br $gnext)))
              (local.set $p (i32.add (local.get $row) (i32.shl (local.get $tgt) (i32.const 2))))
              (f32.store (local.get $p) (f32.sub (f32.load (local.get $p)) (local.get $invCount)))))
          (local.set $p (i32.add (local.get $stats) (i32.mul (local.get $r) (i32.const 12))))
          (f32.store (local.get $p) (local.get $sum))
          (f32.store offset=4 (local.get $p) (f32.sub (local.get $m) (local.get $lt)))
          (f32.store offset=8 (local.get $p) (local.get $hit))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  ;; ---------------------------------------------------------------------------------------------------------------
  ;; The low-rank Δ projection (dt_head / dt_proj: dt_rank → d, dt_rank ≈ d_model/16): too thin for a BLAS GEMM to
  ;; run well (inner or outer dimension 8), a handful of vector multiply-adds per output here.
  ;; δ is read in place from x_proj's output rows (`stride` floats, δ first); W is transposed to [R, d].

  ;; zb[r, :] = bias + Σ_j δ[r, j] W[j, :]
  (func (export "dt_fwd") (param $rows i32) (param $R i32) (param $d i32) (param $stride i32)
    (param $dbl i32) (param $w i32) (param $bias i32) (param $zb i32)
    (local $r i32) (local $i i32) (local $j i32) (local $rowb i32) (local $src i32) (local $acc v128)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $src (i32.add (local.get $dbl) (i32.shl (i32.mul (local.get $r) (local.get $stride)) (i32.const 2))))
      (local.set $i (i32.const 0))
      (block $idone (loop $inext
        (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
        (local.set $acc (v128.load (i32.add (local.get $bias) (local.get $i))))
        (local.set $j (i32.const 0))
        (block $jdone (loop $jnext
          (br_if $jdone (i32.ge_u (local.get $j) (local.get $R)))
          (local.set $acc (f32x4.add (local.get $acc)
            (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2)))))
              (v128.load (i32.add (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $rowb))) (local.get $i))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jnext)))
        (v128.store (i32.add (local.get $zb) (i32.add (i32.mul (local.get $r) (local.get $rowb)) (local.get $i))) (local.get $acc))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $inext)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  ;; Backward from gz = ∂loss/∂zb [rows, d]: gdelta[r, j] = Σ_i gz[r, i] W[j, i] (written into rows of `stride`
  ;; floats, δ columns first), and gw [R, d] (transposed), gbias [d] set to this call's sums.
  (func (export "dt_bwd") (param $rows i32) (param $R i32) (param $d i32) (param $stride i32)
    (param $dbl i32) (param $w i32) (param $gz i32) (param $gdbl i32) (param $gw i32) (param $gbias i32)
    (local $r i32) (local $i i32) (local $j i32) (local $rowb i32) (local $src i32) (local $g i32)
    (local $gv v128) (local $acc v128) (local $p i32)
    (local.set $rowb (i32.shl (local.get $d) (i32.const 2)))
    (memory.fill (local.get $gw) (i32.const 0) (i32.mul (local.get $R) (local.get $rowb)))
    (memory.fill (local.get $gbias) (i32.const 0) (local.get $rowb))
    (block $rdone (loop $rnext
      (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $src (i32.add (local.get $dbl) (i32.shl (i32.mul (local.get $r) (local.get $stride)) (i32.const 2))))
      (local.set $g (i32.add (local.get $gz) (i32.mul (local.get $r) (local.get $rowb))))
      ;; ∂b += gz_r
      (local.set $i (i32.const 0))
      (block $bdone (loop $bnext
        (br_if $bdone (i32.ge_u (local.get $i) (local.get $rowb)))
        (v128.store (i32.add (local.get $gbias) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $gbias) (local.get $i))) (v128.load (i32.add (local.get $g) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $bnext)))
      (local.set $j (i32.const 0))
      (block $jdone (loop $jnext
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $R)))
        ;; ∂W[j, :] += δ[r, j] gz_r;  ∂δ[r, j] = gz_r · W[j, :]
        (local.set $gv (f32x4.splat (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $idone (loop $inext
          (br_if $idone (i32.ge_u (local.get $i) (local.get $rowb)))
          (local.set $p (i32.add (i32.mul (local.get $j) (local.get $rowb)) (local.get $i)))
          (v128.store (i32.add (local.get $gw) (local.get $p)) (f32x4.add (v128.load (i32.add (local.get $gw) (local.get $p)))
            (f32x4.mul (local.get $gv) (v128.load (i32.add (local.get $g) (local.get $i))))))
          (local.set $acc (f32x4.add (local.get $acc)
            (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (v128.load (i32.add (local.get $w) (local.get $p))))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $inext)))
        (f32.store (i32.add (i32.add (local.get $gdbl) (i32.shl (i32.mul (local.get $r) (local.get $stride)) (i32.const 2)))
          (i32.shl (local.get $j) (i32.const 2))) (call $hsum (local.get $acc)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $jnext)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rnext))))

  ;; ---------------------------------------------------------------------------------------------------------------
  ;; Mamba's Δ = softplus(z) and its derivative σ(z), so that the Mamba scan needs no per-element JavaScript.

  ;; log(1 + u) for 0 ≤ u ≤ 1 (Cephes logf on w = 1 + u ∈ [1, 2]: w = 2^e m with m ∈ [√½, √2), degree-8
  ;; polynomial in m − 1), then Goldberg's correction log1p(u) = log(w) · u / (w − 1), which removes the rounding
  ;; of 1 + u (exact u when w rounds to 1).
  (func $log1p4 (param $u v128) (result v128)
    (local $w v128) (local $big v128) (local $x v128) (local $e v128) (local $z v128) (local $p v128) (local $r v128) (local $wm1 v128)
    (local.set $w (f32x4.add (local.get $u) (v128.const f32x4 1 1 1 1)))
    (local.set $big (f32x4.gt (local.get $w) (v128.const f32x4 1.41421356237 1.41421356237 1.41421356237 1.41421356237)))
    (local.set $x (f32x4.sub (v128.bitselect (f32x4.mul (local.get $w) (v128.const f32x4 0.5 0.5 0.5 0.5)) (local.get $w) (local.get $big)) (v128.const f32x4 1 1 1 1)))
    (local.set $e (v128.and (local.get $big) (v128.const f32x4 1 1 1 1)))
    (local.set $z (f32x4.mul (local.get $x) (local.get $x)))
    (local.set $p (v128.const f32x4 7.0376836292e-2 7.0376836292e-2 7.0376836292e-2 7.0376836292e-2))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 -1.1514610310e-1 -1.1514610310e-1 -1.1514610310e-1 -1.1514610310e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 1.1676998740e-1 1.1676998740e-1 1.1676998740e-1 1.1676998740e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 -1.2420140846e-1 -1.2420140846e-1 -1.2420140846e-1 -1.2420140846e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 1.4249322787e-1 1.4249322787e-1 1.4249322787e-1 1.4249322787e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 -1.6668057665e-1 -1.6668057665e-1 -1.6668057665e-1 -1.6668057665e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 2.0000714765e-1 2.0000714765e-1 2.0000714765e-1 2.0000714765e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 -2.4999993993e-1 -2.4999993993e-1 -2.4999993993e-1 -2.4999993993e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $x)) (v128.const f32x4 3.3333331174e-1 3.3333331174e-1 3.3333331174e-1 3.3333331174e-1)))
    (local.set $r (f32x4.mul (f32x4.mul (local.get $p) (local.get $x)) (local.get $z)))
    (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $e) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $z) (v128.const f32x4 0.5 0.5 0.5 0.5))))
    (local.set $r (f32x4.add (f32x4.add (local.get $x) (local.get $r)) (f32x4.mul (local.get $e) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $wm1 (f32x4.sub (local.get $w) (v128.const f32x4 1 1 1 1)))
    (v128.bitselect (local.get $u) (f32x4.div (f32x4.mul (local.get $r) (local.get $u)) (local.get $wm1))
      (f32x4.eq (local.get $wm1) (v128.const f32x4 0 0 0 0))))

  ;; out[i] = softplus(z[i]) = max(z, 0) + log1p(e^{−|z|}), n a multiple of 4.
  (func (export "softplus") (param $n i32) (param $z i32) (param $out i32)
    (local $o i32) (local $end i32) (local $v v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $z) (local.get $o))))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (f32x4.add (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0))
          (call $log1p4 (call $exp4 (f32x4.neg (f32x4.abs (local.get $v)))))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $next))))

  ;; g[i] ← g[i] · σ(z[i]) (softplus' = sigmoid), n a multiple of 4.
  (func (export "mul_sigmoid") (param $n i32) (param $g i32) (param $z i32)
    (local $o i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (v128.store (i32.add (local.get $g) (local.get $o))
        (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $o))) (call $sigmoid4 (v128.load (i32.add (local.get $z) (local.get $o))))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $next))))
)
