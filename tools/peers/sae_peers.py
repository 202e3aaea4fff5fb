#!/usr/bin/python3
"""
PyTorch peers for `npm run bench` (issue 15): the step a researcher would otherwise run, timed on the same machine
in the same run as ours, so the benchmark prints ratios instead of dividing by constants.

For every architecture (ReLU, Gated, TopK, JumpReLU, BatchTopK) there are two dense steps, and the faster one is
"the fastest dense PyTorch step":
  - "autograd": SAELens / dictionary_learning style — nn.Parameters, the loss written out, loss.backward(),
    torch.optim.Adam; JumpReLU's jump and its L0 step are custom autograd Functions with the paper's
    straight-through rectangle-kernel pseudo-derivatives (Rajamanoharan et al. 2024b, eqs. 11-12), as SAELens does.
  - "manual": the same step with the gradients written by hand (dense matmuls via addmm, in-place elementwise
    passes, no autograd graph), which saves the graph's extra [B, m] temporaries.
For TopK there is also "sparse": EleutherAI sparsify's CPU formulation (sparsify/fused_encoder.py, utils.py's
eager_decode): a custom autograd encoder whose backward computes the input gradient by embedding_bag over the k
active latents and the weight gradient by index_add of their rows, and a decoder that is F.embedding_bag over the
active latents (its autograd backward touches only them). Encoder weight stored [m, d] as nn.Linear does.

Every step does the same recipe work as ours (tools/bench.ts, packages/*/src): Adam with the architecture's betas,
the unit-norm decoder's gradient projection and renormalisation (TopK, BatchTopK, JumpReLU, Gated), ReLU's
decoder-norm-weighted L1 with gradient clipping at 1, JumpReLU's θ ≥ 0 clamp. AuxK is off in both (no latent is dead
within a benchmark's few steps). Shapes and data follow the benchmark: x ~ N(0, 1/d_in), W_enc = W_decᵀ with random
rows of norm 1 (ReLU: 0.1), and at "trained" sparsity each latent's bias / threshold is put at mean + z·std of its
pre-activation so that L0 ≈ target, exactly as bench.ts does.

Runs with Debian's python3-torch (1.13; /usr/bin/python3), threads = os.cpu_count().
  /usr/bin/python3 tools/peers/sae_peers.py --arch topk --variant sparse --sparsity trained    # one table
  /usr/bin/python3 tools/peers/sae_peers.py --serve     # JSON lines on stdin/stdout (used by tools/bench.ts)
Without torch it prints one line saying so and exits with status 3.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark reports the peers as skipped
    print("sae_peers: PyTorch is not installed for this interpreter (Debian: apt-get install python3-torch)", file=sys.stderr)
    sys.exit(3)

torch.set_num_threads(os.cpu_count() or 1)
torch.set_grad_enabled(False)

ARCHS = ("relu", "gated", "topk", "jumprelu", "batchtopk")
VARIANTS = {"relu": ("autograd", "manual"), "gated": ("autograd", "manual"), "topk": ("autograd", "manual", "sparse"),
            "jumprelu": ("autograd", "manual"), "batchtopk": ("autograd", "manual")}
# Recipes (packages/sae-*/src): Adam betas, λ at d_in (ReLU 5/√d_in), gradient clip, unit-norm decoder.
BETA1 = {"relu": 0.9, "gated": 0.0, "topk": 0.9, "jumprelu": 0.0, "batchtopk": 0.9}
LR = {"relu": 5e-5, "gated": 5e-5, "topk": 2e-4, "jumprelu": 7e-5, "batchtopk": 2e-4}
UNIT_NORM = {"relu": False, "gated": True, "topk": True, "jumprelu": True, "batchtopk": True}
BANDWIDTH = 0.001  # JumpReLU ε


def lam_for(arch, d_in):
    return {"relu": 5 / math.sqrt(d_in), "gated": 1.0, "jumprelu": 1e-3}.get(arch, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Parameters, data, trained-like sparsity


def make_params(arch, d_in, d_sae, gen, sparse_layout):
    """Tied init (sae.md): W_dec rows random directions of norm 1 (ReLU 0.1), W_enc = W_decᵀ, biases 0."""
    w_dec = torch.randn(d_sae, d_in, generator=gen)
    w_dec *= (0.1 if arch == "relu" else 1.0) / w_dec.norm(dim=1, keepdim=True)
    p = {"W_dec": w_dec, "b_dec": torch.zeros(d_in), "W_enc": w_dec.t().contiguous()}
    if sparse_layout:
        p["W_enc"] = w_dec.clone()  # nn.Linear layout [m, d] (sparsify)
    if arch == "gated":
        p.update(b_gate=torch.zeros(d_sae), r_mag=torch.zeros(d_sae), b_mag=torch.zeros(d_sae))
    else:
        p["b_enc"] = torch.zeros(d_sae)
    if arch == "jumprelu":
        p["threshold"] = torch.full((d_sae,), 0.001)
    return p


def set_trained_sparsity(arch, p, x, target_l0):
    """bench.ts's setTrainedSparsity: bias / threshold at mean + z·std of each latent's pre-activation (b_dec = 0)."""
    if arch in ("topk", "batchtopk"):
        return
    pre = x @ p["W_enc"]
    d_sae = pre.shape[1]
    z = statistics.NormalDist().inv_cdf(1 - target_l0 / d_sae)
    cut = pre.mean(0) + z * pre.std(0, unbiased=False)
    if arch == "relu":
        p["b_enc"].copy_(-cut)
    elif arch == "jumprelu":
        p["threshold"].copy_(cut)
    elif arch == "gated":
        p["b_gate"].copy_(-cut)
        p["b_mag"].copy_(-cut)


# ---------------------------------------------------------------------------------------------------------------
# Shared recipe pieces


def remove_parallel_grad(w_dec, g):
    """g_i ← g_i − (g_i·W_i / ‖W_i‖²) W_i (unit-norm decoders; Gao et al. 2024)."""
    coef = (g * w_dec).sum(1, keepdim=True) / (w_dec * w_dec).sum(1, keepdim=True)
    g.sub_(coef * w_dec)


def renormalise(w_dec):
    w_dec.div_(w_dec.norm(dim=1, keepdim=True))


def make_adam(arch, tensors):
    # foreach=True: PyTorch's multi-tensor Adam (fewer kernel launches); it was not slower than the loop here.
    return torch.optim.Adam(tensors, lr=LR[arch], betas=(BETA1[arch], 0.999), foreach=True)


def clip_(grads, max_norm):
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (float(total) + 1e-6))


# ---------------------------------------------------------------------------------------------------------------
# JumpReLU's straight-through estimators (Rajamanoharan et al. 2024b, eqs. 11-12; SAELens's JumpReLU/Step functions)


def rect(u):
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class JumpReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta):
        ctx.save_for_backward(pre, theta)
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, g):
        pre, theta = ctx.saved_tensors
        d_pre = g * (pre > theta)
        d_theta = (-(theta / BANDWIDTH) * rect((pre - theta) / BANDWIDTH) * g).sum(0)
        return d_pre, d_theta


class StepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, theta):
        ctx.save_for_backward(pre, theta)
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, g):
        pre, theta = ctx.saved_tensors
        return torch.zeros_like(pre), (-(1.0 / BANDWIDTH) * rect((pre - theta) / BANDWIDTH) * g).sum(0)


# ---------------------------------------------------------------------------------------------------------------
# Sparse TopK (EleutherAI sparsify): custom encoder, embedding_bag decoder


class SparseTopKEncoder(torch.autograd.Function):
    """values, indices = TopK_k(ReLU(input·Wᵀ + b)); backward touches only the k selected latents per row."""

    @staticmethod
    def forward(ctx, inp, weight, bias, k):
        pre = F.relu(F.linear(inp, weight, bias))
        values, indices = torch.topk(pre, k, dim=-1, sorted=False)
        ctx.save_for_backward(inp, weight, indices)
        return values, indices

    @staticmethod
    def backward(ctx, g_values, _g_indices):
        inp, weight, indices = ctx.saved_tensors
        g_input = F.embedding_bag(indices, weight, mode="sum", per_sample_weights=g_values)
        contrib = (g_values.unsqueeze(2) * inp.unsqueeze(1)).reshape(-1, inp.shape[1])
        g_weight = torch.zeros_like(weight).index_add_(0, indices.flatten(), contrib)
        g_bias = torch.zeros(weight.shape[0], dtype=weight.dtype).index_add_(0, indices.flatten(), g_values.flatten())
        return g_input, g_weight, g_bias, None


# ---------------------------------------------------------------------------------------------------------------
# Steps. Each builder returns step() -> L0 of the batch (float).


def autograd_loss(arch, P, x, lam, k):
    """The loss as SAELens / dictionary_learning write it (autograd differentiates it); returns (loss, f)."""
    B = x.shape[0]
    inp = x - P["b_dec"]
    if arch == "gated":
        shared = inp @ P["W_enc"]
        pi_gate = shared + P["b_gate"]
        pi_mag = shared * torch.exp(P["r_mag"]) + P["b_mag"]
        f = (pi_gate > 0).to(x.dtype) * F.relu(pi_mag)
        x_hat = f @ P["W_dec"] + P["b_dec"]
        via_gate = F.relu(pi_gate)
        x_aux = via_gate @ P["W_dec"].detach() + P["b_dec"].detach()
        loss = ((x_hat - x) ** 2).sum(1).mean() + lam * via_gate.sum(1).mean() + ((x_aux - x) ** 2).sum(1).mean()
        return loss, f
    pre = inp @ P["W_enc"] + P["b_enc"]
    if arch == "relu":
        f = F.relu(pre)
        x_hat = f @ P["W_dec"] + P["b_dec"]
        loss = ((x_hat - x) ** 2).sum(1).mean() + lam * (f * P["W_dec"].norm(dim=1)).sum(1).mean()
    elif arch == "jumprelu":
        f = JumpReLUFn.apply(pre, P["threshold"])
        x_hat = f @ P["W_dec"] + P["b_dec"]
        loss = ((x_hat - x) ** 2).sum(1).mean() + lam * StepFn.apply(pre, P["threshold"]).sum(1).mean()
    elif arch == "topk":
        values, indices = pre.topk(k, dim=1)
        f = torch.zeros_like(pre).scatter(1, indices, F.relu(values))
        x_hat = f @ P["W_dec"] + P["b_dec"]
        loss = ((x_hat - x) ** 2).sum(1).mean()
    else:  # batchtopk: the k·B largest of ReLU(pre) over the whole batch (Bussmann et al. 2024)
        flat = F.relu(pre).flatten()
        values, indices = flat.topk(k * B)
        f = torch.zeros_like(flat).scatter(0, indices, values).view_as(pre)
        x_hat = f @ P["W_dec"] + P["b_dec"]
        loss = ((x_hat - x) ** 2).sum(1).mean()
    return loss, f


def autograd_step(arch, p, x, lam, k):
    params = {n: torch.nn.Parameter(t) for n, t in p.items()}
    opt = make_adam(arch, list(params.values()))
    B = x.shape[0]

    def step():
        with torch.enable_grad():
            opt.zero_grad(set_to_none=True)
            loss, f = autograd_loss(arch, params, x, lam, k)
            loss.backward()
        P = params
        if UNIT_NORM[arch]:
            remove_parallel_grad(P["W_dec"].data, P["W_dec"].grad)
        if arch == "relu":
            clip_([t.grad for t in P.values()], 1.0)
        opt.step()
        if UNIT_NORM[arch]:
            renormalise(P["W_dec"].data)
        if arch == "jumprelu":
            P["threshold"].data.clamp_(min=0)
        return float((f != 0).sum()) / B

    return step


def manual_grads(arch, P, G, x, lam, k):
    """The step's gradients written by hand into G (dense matmuls, as autograd would run them); returns f."""
    B = x.shape[0]
    two_over_b = 2.0 / B

    def decoder_part(f):
        """x̂ = f·W_dec + b_dec, dX̂ = 2(x̂ − x)/B, dW_dec = fᵀ·dX̂, db_dec = Σ dX̂; returns ∂L/∂f = dX̂·W_decᵀ."""
        x_hat = torch.addmm(P["b_dec"], f, P["W_dec"])
        d_xhat = x_hat.sub_(x).mul_(two_over_b)
        torch.mm(f.t(), d_xhat, out=G["W_dec"])
        torch.sum(d_xhat, 0, out=G["b_dec"])
        return d_xhat @ P["W_dec"].t()

    def encoder_part(inp, d_pre):
        """dW_enc = inputᵀ·dPre; input = x − b_dec adds −(Σ dPre)·W_encᵀ to db_dec; returns Σ_rows dPre."""
        torch.mm(inp.t(), d_pre, out=G["W_enc"])
        d_bias = d_pre.sum(0)
        G["b_dec"].sub_(P["W_enc"] @ d_bias)
        return d_bias

    inp = x - P["b_dec"]
    if arch == "gated":
        shared = inp @ P["W_enc"]
        scale = torch.exp(P["r_mag"])
        pi_gate = shared + P["b_gate"]
        gate = pi_gate > 0
        pi_mag = torch.addcmul(P["b_mag"], shared, scale)
        f = F.relu(pi_mag).mul_(gate)
        via_gate = F.relu(pi_gate)
        d_f = decoder_part(f)
        x_aux = torch.addmm(P["b_dec"], via_gate, P["W_dec"])  # frozen decoder: no W_dec / b_dec gradient
        d_aux = x_aux.sub_(x).mul_(two_over_b)
        d_gate = (d_aux @ P["W_dec"].t()).add_(lam / B).mul_(gate)  # ∂/∂π_gate (aux + L1) where the gate is open
        d_mag = d_f.mul_(pi_mag > 0).mul_(gate)  # ∂/∂π_mag where f is on
        torch.sum(d_gate, 0, out=G["b_gate"])
        torch.sum(d_mag, 0, out=G["b_mag"])
        torch.mul((d_mag * shared).sum(0), scale, out=G["r_mag"])
        encoder_part(inp, d_gate.add_(d_mag.mul_(scale)))
        return f
    pre = torch.addmm(P["b_enc"], inp, P["W_enc"])
    if arch == "relu":
        f = F.relu(pre)
        norms = P["W_dec"].norm(dim=1)
        d_f = decoder_part(f)
        # decoder-norm-weighted L1: ∂/∂f_i = (λ/B)‖W_dec,i‖, ∂/∂W_dec,i = (λ/B)(Σ_rows f_i) W_dec,i / ‖W_dec,i‖
        G["W_dec"].addcmul_(((lam / B) * f.sum(0) / norms).unsqueeze(1), P["W_dec"])
        d_pre = d_f.add_((lam / B) * norms).mul_(f > 0)
    elif arch == "jumprelu":
        theta = P["threshold"]
        on = pre > theta
        f = pre * on
        d_f = decoder_part(f)
        window = rect((pre - theta) / BANDWIDTH)
        G["threshold"].copy_((-(theta / BANDWIDTH)) * (window * d_f).sum(0) - (lam / B / BANDWIDTH) * window.sum(0))
        d_pre = d_f.mul_(on)
    else:
        if arch == "topk":
            values, indices = pre.topk(k, dim=1)
            f = torch.zeros_like(pre).scatter_(1, indices, F.relu(values))
        else:
            flat = F.relu(pre).flatten()
            values, indices = flat.topk(k * B)
            f = torch.zeros_like(flat).scatter_(0, indices, values).view_as(pre)
        d_f = decoder_part(f)
        d_pre = d_f.mul_(f > 0)
    G["b_enc"].copy_(encoder_part(inp, d_pre))
    return f


def manual_step(arch, p, x, lam, k):
    """manual_grads, then the same recipe as the autograd step."""
    grads = {n: torch.zeros_like(t) for n, t in p.items()}
    params = {n: torch.nn.Parameter(t) for n, t in p.items()}
    for n, t in params.items():
        t.grad = grads[n]
    opt = make_adam(arch, list(params.values()))
    P = {n: t.data for n, t in params.items()}
    G = grads
    B = x.shape[0]

    def step():
        f = manual_grads(arch, P, G, x, lam, k)
        if UNIT_NORM[arch]:
            remove_parallel_grad(P["W_dec"], G["W_dec"])
        if arch == "relu":
            clip_(list(G.values()), 1.0)
        opt.step()
        if UNIT_NORM[arch]:
            renormalise(P["W_dec"])
        if arch == "jumprelu":
            P["threshold"].clamp_(min=0)
        return float((f != 0).sum()) / B

    return step


def sparse_topk_step(arch, p, x, lam, k):
    assert arch == "topk"
    params = {n: torch.nn.Parameter(t) for n, t in p.items()}
    opt = make_adam(arch, list(params.values()))
    P = params
    B = x.shape[0]

    def step():
        with torch.enable_grad():
            opt.zero_grad(set_to_none=True)
            values, indices = SparseTopKEncoder.apply(x - P["b_dec"], P["W_enc"], P["b_enc"], k)
            x_hat = F.embedding_bag(indices, P["W_dec"], per_sample_weights=values, mode="sum") + P["b_dec"]
            loss = ((x_hat - x) ** 2).sum(1).mean()
            loss.backward()
        remove_parallel_grad(P["W_dec"].data, P["W_dec"].grad)
        opt.step()
        renormalise(P["W_dec"].data)
        return float((values > 0).sum()) / B

    return step


BUILDERS = {"autograd": autograd_step, "manual": manual_step, "sparse": sparse_topk_step}


def run_step(arch, variant, d_in, d_sae, batch, k, sparsity, warmup, steps, seed=0):
    if variant not in VARIANTS[arch]:
        raise ValueError(f"no variant '{variant}' for {arch} (have {', '.join(VARIANTS[arch])})")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d_in, generator=gen) / math.sqrt(d_in)
    p = make_params(arch, d_in, d_sae, gen, sparse_layout=(variant == "sparse"))
    if sparsity == "trained":
        set_trained_sparsity(arch, p, x, k)
    step = BUILDERS[variant](arch, p, x, lam_for(arch, d_in), k)
    for _ in range(warmup):
        step()
    times, l0 = [], 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        l0 += step() / steps
        times.append(time.perf_counter() - t0)
    ms = 1000 * sum(times) / steps
    return {"arch": arch, "variant": variant, "sparsity": sparsity, "l0": l0, "ms": ms, "tokensPerS": batch / ms * 1000,
            "msMin": 1000 * min(times), "msMax": 1000 * max(times)}


def check(seed=0):
    """The peers compute the same gradients: manual_grads and the sparse TopK step against autograd, in float64 on
    small shapes (at trained-like sparsity, so the thresholds and JumpReLU's window are exercised). Returns the worst
    relative difference per (arch, variant, tensor); `--check` fails above 1e-9."""
    torch.set_default_dtype(torch.float64)
    try:
        d_in, d_sae, batch, k = 16, 64, 32, 4
        out = {}
        for arch in ARCHS:
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(batch, d_in, generator=gen) / math.sqrt(d_in)
            base = make_params(arch, d_in, d_sae, gen, sparse_layout=False)
            set_trained_sparsity(arch, base, x, 8)
            base["b_dec"].normal_(0, 0.01, generator=gen)
            if arch == "jumprelu":  # put a few pre-activations inside the STE window |pre − θ| < ε/2
                pre = (x - base["b_dec"]) @ base["W_enc"] + base["b_enc"]
                base["threshold"].copy_(pre[0] + 0.0002)
            lam = lam_for(arch, d_in) + 0.1
            P = {n: torch.nn.Parameter(t.clone()) for n, t in base.items()}
            with torch.enable_grad():
                loss, _ = autograd_loss(arch, P, x, lam, k)
                loss.backward()
            ref = {n: t.grad for n, t in P.items()}
            G = {n: torch.zeros_like(t) for n, t in base.items()}
            manual_grads(arch, {n: t.clone() for n, t in base.items()}, G, x, lam, k)
            for n in ref:
                out[f"{arch} manual {n}"] = rel(G[n], ref[n])
            if arch == "topk":
                S = {n: torch.nn.Parameter(t.clone()) for n, t in base.items()}
                S["W_enc"] = torch.nn.Parameter(base["W_enc"].t().contiguous())
                with torch.enable_grad():
                    values, indices = SparseTopKEncoder.apply(x - S["b_dec"], S["W_enc"], S["b_enc"], k)
                    x_hat = F.embedding_bag(indices, S["W_dec"], per_sample_weights=values, mode="sum") + S["b_dec"]
                    ((x_hat - x) ** 2).sum(1).mean().backward()
                for n in ref:
                    g = S[n].grad.t() if n == "W_enc" else S[n].grad
                    out[f"topk sparse {n}"] = rel(g, ref[n])
        return out
    finally:
        torch.set_default_dtype(torch.float32)


def rel(a, b):
    scale = max(float(b.abs().max()), 1e-30)
    return float((a - b).abs().max()) / scale


def gemm_peak(shapes, reps=5):
    """Best fp32 GFLOP/s of torch.mm over the given (m, k, n) shapes (out= buffers, so no allocation is timed)."""
    best = []
    for m, kk, n in shapes:
        a, b, c = torch.randn(m, kk), torch.randn(kk, n), torch.empty(m, n)
        torch.mm(a, b, out=c)
        t = min(_timed(lambda: torch.mm(a, b, out=c)) for _ in range(reps))
        best.append({"m": m, "k": kk, "n": n, "gflops": 2 * m * kk * n / t / 1e9})
    return best


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def blas_in_use():
    """The BLAS library this process mapped (Debian's torch calls libblas.so.3, an alternative: the reference
    Netlib BLAS runs ~25× slower than OpenBLAS, so a peer on it would be a straw man; bench.ts warns)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return "unknown"
    for lib in sorted(libs):
        name = os.path.basename(os.path.realpath(lib))
        if "openblas" in name or "mkl" in name or "blis" in name:
            return name
    ref = [l for l in libs if "libblas" in os.path.realpath(l)]
    return f"reference BLAS ({os.path.realpath(ref[0])})" if ref else "unknown"


def describe():
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": sys.version.split()[0],
            "blas": blas_in_use()}


def serve():
    """JSON lines: {"cmd": "describe"|"gemm"|"step", ...} → one JSON line per request; errors as {"error": ...}."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "describe":
                out = describe()
            elif cmd == "gemm":
                out = {"shapes": gemm_peak([tuple(s) for s in req["shapes"]], req.get("reps", 5))}
            elif cmd == "step":
                out = run_step(req["arch"], req["variant"], req["dIn"], req["dSae"], req["batch"], req["k"],
                               req["sparsity"], req["warmup"], req["steps"])
            else:
                raise ValueError(f"unknown cmd {cmd!r}")
        except Exception as e:  # one bad request must not kill the benchmark's other rows
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--check", action="store_true", help="gradient agreement of the variants (float64), then exit")
    ap.add_argument("--arch", action="append", choices=ARCHS)
    ap.add_argument("--variant", action="append", choices=("autograd", "manual", "sparse"))
    ap.add_argument("--sparsity", default="both", choices=("init", "trained", "both"))
    ap.add_argument("--d-in", type=int, default=512)
    ap.add_argument("--d-sae", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    if a.serve:
        return serve()
    if a.check:
        worst = check()
        for name, d in worst.items():
            print(f"{name:28} {d:.2e}")
        bad = [n for n, d in worst.items() if not d <= 1e-9]
        print("check: " + ("all variants agree with autograd (≤ 1e-9 relative)" if not bad else f"FAILED: {', '.join(bad)}"))
        sys.exit(1 if bad else 0)
    print(json.dumps(describe()))
    for g in gemm_peak([(a.batch, a.d_in, a.d_sae), (2048, 2048, 2048)]):
        print(f"torch.mm {g['m']}×{g['k']}×{g['n']}: {g['gflops']:.1f} GFLOP/s")
    sparsities = ["init", "trained"] if a.sparsity == "both" else [a.sparsity]
    for arch in a.arch or ARCHS:
        for variant in [v for v in (a.variant or VARIANTS[arch]) if v in VARIANTS[arch]]:
            for s in sparsities:
                if arch in ("topk", "batchtopk") and s == "init" and len(sparsities) > 1:
                    continue  # k fixes L0
                r = run_step(arch, variant, a.d_in, a.d_sae, a.batch, a.k, s, a.warmup, a.steps)
                print(f"{arch:9} {variant:8} {s:8} L0 {r['l0']:7.1f}  {r['tokensPerS']:8.0f} tokens/s  "
                      f"{r['ms']:7.1f} ms/step (min {r['msMin']:.0f}, max {r['msMax']:.0f})", flush=True)


if __name__ == "__main__":
    main()
