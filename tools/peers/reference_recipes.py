#!/usr/bin/python3
"""
Reference-recipe SAEs in PyTorch on saelab activation stores: an independent yardstick for saelab's own trainers.

Trains sparse autoencoders with the public reference recipes -- written from reading the reference code, not
copied -- on the same activations saelab's sweep uses, and reports held-out FVU, L0 and dead fractions at matched
L0 targets (default 8, 16, 32). Recipes (each cites the file it follows):

  dl-relu       dictionary_learning StandardTrainerAprilUpdate (Anthropic April-2024 update): ReLU SAE, L1 of
                f_i * ||W_dec,i||, unconstrained decoder (init norm 0.1, W_enc = W_dec^T), grad clip 1.
  dl-gated      dictionary_learning GatedSAETrainer (gdm.py; Rajamanoharan et al. 2024 "Gated SAEs"): gate/magnitude
                paths with r_mag, L1 on ReLU(pi_gate), auxiliary reconstruction through the frozen decoder,
                unit-norm decoder (ConstrainedAdam), Adam betas (0, 0.999), no clipping.
  dl-topk       dictionary_learning TopKTrainer (top_k.py; Gao et al. 2024 / openai sparse_autoencoder): TopK with
                AuxK (k_aux = d/2, alpha 1/32) normalised by the residual's variance as OpenAI's kernels.py does,
                b_dec at the geometric median of the first batch, unit-norm decoder with the parallel gradient
                removed, grad clip 1, lr from the 2e-4 / sqrt(m / 2^14) rule.
  dl-batchtopk  dictionary_learning BatchTopKTrainer (batch_top_k.py; Bussmann et al. 2024): top k*B over the
                batch, same AuxK / decoder handling as dl-topk; inference threshold = mean over training batches of
                the smallest positive activation, estimated after training (the paper's procedure).
  dl-jumprelu   dictionary_learning JumpReluTrainer (jumprelu.py; Rajamanoharan et al. 2024 "Jumping Ahead"):
                raw threshold (init 0.001), bandwidth 0.001, rectangle-kernel pseudo-gradients, target-L0 penalty
                lambda * (L0 / L0_target - 1)^2 with lambda = 1, Adam betas (0, 0.999), unit-norm decoder, clip 1.
  sl-jumprelu   SAELens JumpReLUTrainingSAE (sae_lens/saes/jumprelu_sae.py, "step" mode = GDM's L0 loss):
                log-threshold (init 0.01), bandwidth 0.05, L0 coefficient (calibrated to the target here),
                decoder init norm 0.1 (sae_lens/saes/sae.py TrainingSAE), b_dec subtracted from the input,
                Adam (0.9, 0.999), constant lr, grad clip 1 (sae_lens/training/sae_trainer.py).

Normalisation as each reference does it: dictionary_learning scales inputs to unit mean squared norm
(training.py get_norm_factor: E||x||^2 = 1); SAELens "expected_average_only_in" scales them so E||x|| = sqrt(d_in).
The scale is estimated on the training rows; metrics are computed on raw (unscaled) activations.

Metrics (packages/core/src/metrics.ts, /work/shared/specs/metrics-and-sweeps.md): FVU = sum_rows sum_d (x - x_hat)^2
/ sum_rows sum_d (x - mean(x))^2 with the mean over the evaluation rows, accumulated in float64; L0 = mean number of
non-zero latents per row; dead = latents that never fire on the evaluation rows; dead_train = latents that did not
fire during the last 20% of training steps.

Rows: training rows are the first `--tokens` rows of the train-split store (one epoch, shuffled per seed); the
selection slice (lr choice and lambda calibration) is the LAST `--select-rows` rows of the train-split store (later
documents; disjoint from the training rows); every reported number comes from the validation-split store
(different documents, never used for any choice).

Usage: see docs/results/reference-recipes/README.md. Runs are cached as JSON under OUT/runs/, so an interrupted run
resumes; results go to OUT/results.json and OUT/results.md.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

# Threads: set from --threads in main(). On the shared 2-core machine, 2 OpenMP threads under a load of ~25 made a
# step 20x slower than 1 thread (676 vs 32 ms for dl-relu at batch 1024; spin-waiting at barriers), so 1 is default.

CODE_VERSION = 1


# ----------------------------------------------------------------------------------------------------------------
# Data: saelab activation stores (packages/activations/src/store.ts: manifest.json + shard-NNNNN.npy, float32 or
# float16 little-endian, C order; every shard has a SHA-256 in the manifest).
# ----------------------------------------------------------------------------------------------------------------

def load_store(path):
    with open(os.path.join(path, 'manifest.json')) as f:
        manifest = json.load(f)
    if manifest.get('format') != 'saelab-activations' or not manifest.get('complete'):
        sys.exit(f'{path}: not a complete saelab activation store')
    parts = []
    for shard in manifest['shards']:
        file = os.path.join(path, shard['file'])
        with open(file, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != shard['sha256']:
            sys.exit(f'{file}: SHA-256 does not match the manifest')
        a = np.load(file)
        if a.shape != (shard['rows'], manifest['d']):
            sys.exit(f'{file}: shape {a.shape}, manifest says ({shard["rows"]}, {manifest["d"]})')
        parts.append(a.astype(np.float32))
    x = np.concatenate(parts)
    if not np.isfinite(x).all():
        sys.exit(f'{path}: non-finite activations')
    return torch.from_numpy(x), manifest


# ----------------------------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------------------------

def rectangle(u):
    """H(u + 1/2) - H(u - 1/2): the kernel of the JumpReLU paper's straight-through estimator (eq. 11)."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class JumpReLUFn(torch.autograd.Function):
    """z * H(z - theta); d/dz = H(z - theta) (no STE to the input), d/dtheta = -(theta/eps) K((z - theta)/eps)
    summed over the batch (Rajamanoharan et al. 2024 eq. 11; as dictionary_learning trainers/jumprelu.py and
    sae_lens/saes/jumprelu_sae.py implement it)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        eps = ctx.eps
        dz = (z > theta).to(z.dtype) * g
        dtheta = (-(theta / eps) * rectangle((z - theta) / eps) * g).sum(0)
        return dz, dtheta, None


class StepFn(torch.autograd.Function):
    """H(z - theta); d/dz = 0, d/dtheta = -(1/eps) K((z - theta)/eps) summed over the batch (same references)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        dtheta = (-(1.0 / ctx.eps) * rectangle((z - theta) / ctx.eps) * g).sum(0)
        return None, dtheta, None


@torch.no_grad()
def geometric_median(points, max_iter=100, tol=1e-5):
    """Weiszfeld iterations from the mean, as dictionary_learning trainers/top_k.py geometric_median."""
    guess = points.mean(0)
    for _ in range(max_iter):
        prev = guess
        w = 1.0 / (points - guess).norm(dim=1).clamp_min(1e-12)
        guess = (w[:, None] * points).sum(0) / w.sum()
        if (guess - prev).norm() < tol:
            break
    return guess


@torch.no_grad()
def unit_rows_(w):
    """Decoder rows (one per latent, [m, d]) to unit norm (dictionary_learning set_decoder_norm_to_unit_norm)."""
    w /= w.norm(dim=1, keepdim=True) + torch.finfo(w.dtype).eps


@torch.no_grad()
def remove_parallel_grad_(w):
    """Project out the component of each decoder row's gradient along that row (dictionary_learning
    remove_gradient_parallel_to_decoder_directions; ConstrainedAdam in gdm.py does the same)."""
    if w.grad is None:
        return
    u = w / (w.norm(dim=1, keepdim=True) + 1e-6)
    w.grad -= (w.grad * u).sum(1, keepdim=True) * u


def kaiming_rows(m, d, gen):
    """nn.init.kaiming_uniform_ on an [m, d] tensor (fan_in = d, a = 0 -> bound sqrt(6 / d)), seeded."""
    bound = math.sqrt(6.0 / d)
    return (torch.rand(m, d, generator=gen) * 2 - 1) * bound


def mse_sum(x, x_hat):
    """sum_d (x - x_hat)^2, mean over the batch (the references' reconstruction loss)."""
    return (x - x_hat).pow(2).sum(-1).mean()


# ----------------------------------------------------------------------------------------------------------------
# Recipes. Each: init params; loss(x, step) -> (loss, info, latents); optional hooks before/after the Adam step;
# encode(x) for evaluation (inference path). Schedules are given as fractions of the run (see RECIPES).
# ----------------------------------------------------------------------------------------------------------------

class DlRelu(nn.Module):
    """dictionary_learning trainers/standard.py StandardTrainerAprilUpdate + dictionary.py AutoEncoder."""

    def __init__(self, d, m, sparsity, gen, steps, sched):
        super().__init__()
        w = torch.randn(d, m, generator=gen)
        w = w / w.norm(dim=0, keepdim=True) * 0.1  # April update: decoder columns of norm 0.1, W_enc = W_dec^T
        self.W_enc = nn.Parameter(w.T.clone())  # [m, d]
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.W_dec = nn.Parameter(w.T.clone())  # [m, d] (rows = latents)
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.l1 = sparsity
        self.sparsity_warmup = sched['sparsity_warmup']

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)

    def loss(self, x, step):
        f = self.encode(x)
        x_hat = f @ self.W_dec + self.b_dec
        rec = mse_sum(x, x_hat)
        scale = min(step / self.sparsity_warmup, 1.0) if self.sparsity_warmup else 1.0
        sparse = (f * self.W_dec.norm(dim=1)).sum(-1).mean()  # sum_i f_i ||W_dec,i||
        return rec + self.l1 * scale * sparse, f


class DlGated(nn.Module):
    """dictionary_learning trainers/gdm.py GatedSAETrainer + dictionary.py GatedAutoEncoder (Rajamanoharan et al.
    2024, "Improving Dictionary Learning with Gated Sparse Autoencoders", eq. 6-8)."""

    def __init__(self, d, m, sparsity, gen, steps, sched):
        super().__init__()
        bound = 1.0 / math.sqrt(d)  # nn.Linear's default init for the shared encoder
        self.W_enc = nn.Parameter((torch.rand(m, d, generator=gen) * 2 - 1) * bound)
        self.r_mag = nn.Parameter(torch.zeros(m))
        self.b_gate = nn.Parameter(torch.zeros(m))
        self.b_mag = nn.Parameter(torch.zeros(m))
        w = torch.randn(m, d, generator=gen)
        self.W_dec = nn.Parameter(w / w.norm(dim=1, keepdim=True))  # unit-norm decoder, kept so by ConstrainedAdam
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.l1 = sparsity
        self.sparsity_warmup = sched['sparsity_warmup']

    def _paths(self, x):
        xe = (x - self.b_dec) @ self.W_enc.T
        pi_gate = xe + self.b_gate
        pi_mag = torch.exp(self.r_mag) * xe + self.b_mag
        return pi_gate, pi_mag

    def encode(self, x):
        pi_gate, pi_mag = self._paths(x)
        return (pi_gate > 0).to(x.dtype) * torch.relu(pi_mag)

    def loss(self, x, step):
        pi_gate, pi_mag = self._paths(x)
        f = (pi_gate > 0).to(x.dtype) * torch.relu(pi_mag)
        f_gate = torch.relu(pi_gate)
        x_hat = f @ self.W_dec + self.b_dec
        x_hat_gate = f_gate @ self.W_dec.detach() + self.b_dec.detach()
        scale = min(step / self.sparsity_warmup, 1.0) if self.sparsity_warmup else 1.0
        loss = mse_sum(x, x_hat) + self.l1 * scale * f_gate.sum(-1).mean() + mse_sum(x, x_hat_gate)
        return loss, f

    def before_step(self):
        remove_parallel_grad_(self.W_dec)

    def after_step(self):
        unit_rows_(self.W_dec.data)


class DlTopK(nn.Module):
    """dictionary_learning trainers/top_k.py TopKTrainer + AutoEncoderTopK (Gao et al. 2024). `batch_topk` switches
    to trainers/batch_top_k.py BatchTopKTrainer (Bussmann et al. 2024)."""

    def __init__(self, d, m, k, gen, steps, sched, batch_topk=False):
        super().__init__()
        w = kaiming_rows(m, d, gen)
        unit_rows_(w)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.clone())  # encoder = decoder^T
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.k = int(k)
        self.batch_topk = batch_topk
        self.k_aux = d // 2  # "Heuristic from B.1 of the paper" (top_k.py)
        self.auxk_alpha = 1.0 / 32
        self.dead_tokens = sched['dead_tokens']
        self.register_buffer('since_fired', torch.zeros(m, dtype=torch.long))
        self.threshold = None  # BatchTopK inference threshold, set after training

    def pre(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)

    def select(self, post):
        if self.batch_topk:
            flat = post.flatten()
            vals, idx = flat.topk(self.k * post.shape[0], sorted=False)
            return torch.zeros_like(flat).scatter_(0, idx, vals).view_as(post)
        vals, idx = post.topk(self.k, dim=-1, sorted=False)
        return torch.zeros_like(post).scatter_(-1, idx, vals)

    def encode(self, x):
        post = self.pre(x)
        if self.batch_topk:
            return post * (post > self.threshold).to(post.dtype)
        return self.select(post)

    def auxk_loss(self, residual, post):
        """OpenAI / dictionary_learning AuxK: reconstruct the main residual from the top-k_aux dead latents, the
        squared error divided by the residual's variance about its batch mean (openai sparse_autoencoder
        kernels.py normalized MSE; top_k.py get_auxiliary_loss)."""
        dead = self.since_fired >= self.dead_tokens
        n_dead = int(dead.sum())
        if n_dead == 0:
            return residual.new_zeros(())
        k_aux = min(self.k_aux, n_dead)
        masked = torch.where(dead[None], post, torch.full_like(post, -math.inf))
        vals, idx = masked.topk(k_aux, dim=-1, sorted=False)
        aux_acts = torch.zeros_like(post).scatter_(-1, idx, vals)
        recon = aux_acts @ self.W_dec  # no b_dec
        err = (residual - recon).pow(2).sum(-1).mean()
        denom = (residual - residual.mean(0, keepdim=True)).pow(2).sum(-1).mean()
        return torch.nan_to_num(err / denom, nan=0.0)

    def loss(self, x, step):
        if step == 0:
            self.b_dec.data = geometric_median(x)
        post = self.pre(x)
        f = self.select(post)
        x_hat = f @ self.W_dec + self.b_dec
        e = x - x_hat
        fired = (f > 0).any(0)
        self.since_fired += x.shape[0]
        self.since_fired[fired] = 0
        loss = e.pow(2).sum(-1).mean() + self.auxk_alpha * self.auxk_loss(e.detach(), post)
        return loss, f

    def before_step(self):
        remove_parallel_grad_(self.W_dec)

    def after_step(self):
        unit_rows_(self.W_dec.data)

    @torch.no_grad()
    def finish(self, train_x, scale, batch, gen):
        """BatchTopK inference threshold: E over batches of the smallest positive activation (Bussmann et al.
        2024 Sec. 3), estimated on up to 64 training batches after training."""
        if not self.batch_topk:
            return
        n = train_x.shape[0]
        perm = torch.randperm(n, generator=gen)[: min(64 * batch, n)]
        mins = []
        for i in range(0, perm.numel() - batch + 1, batch):
            f = self.select(self.pre(train_x[perm[i:i + batch]] / scale))
            pos = f[f > 0]
            if pos.numel():
                mins.append(float(pos.min()))
        self.threshold = float(np.mean(mins)) if mins else 0.0


class DlJumpRelu(nn.Module):
    """dictionary_learning trainers/jumprelu.py JumpReluTrainer + dictionary.py JumpReluAutoEncoder."""

    def __init__(self, d, m, target_l0, gen, steps, sched):
        super().__init__()
        w = kaiming_rows(m, d, gen)
        unit_rows_(w)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.clone())  # stored [m, d]; W_enc = W_dec^T
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.threshold = nn.Parameter(torch.full((m,), 0.001))  # "Appendix I" of the JumpReLU paper
        self.bandwidth = 0.001
        self.target_l0 = float(target_l0)
        self.penalty = 1.0
        self.sparsity_warmup = sched['sparsity_warmup']

    def encode(self, x):
        # apply_b_dec_to_input = False in JumpReluAutoEncoder
        pre = x @ self.W_enc.T + self.b_enc
        return torch.relu(pre * (pre > self.threshold).to(pre.dtype))

    def loss(self, x, step):
        pre = x @ self.W_enc.T + self.b_enc
        f = JumpReLUFn.apply(pre, self.threshold, self.bandwidth)
        x_hat = f @ self.W_dec + self.b_dec
        # jumprelu.py applies the step function to the post-jump activations f (not to the pre-activations).
        l0 = StepFn.apply(f, self.threshold, self.bandwidth).sum(-1).mean()
        scale = min(step / self.sparsity_warmup, 1.0) if self.sparsity_warmup else 1.0
        loss = mse_sum(x, x_hat) + self.penalty * (l0 / self.target_l0 - 1).pow(2) * scale
        return loss, f

    def before_step(self):
        remove_parallel_grad_(self.W_dec)

    def after_step(self):
        unit_rows_(self.W_dec.data)


class SlJumpRelu(nn.Module):
    """SAELens sae_lens/saes/jumprelu_sae.py JumpReLUTrainingSAE ("step" sparsity mode) on TrainingSAE's init."""

    def __init__(self, d, m, sparsity, gen, steps, sched):
        super().__init__()
        w = kaiming_rows(m, d, gen)
        w = w / w.norm(dim=1, keepdim=True) * 0.1  # decoder_init_norm = 0.1 (TrainingSAEConfig)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.clone())  # W_enc = W_dec^T
        self.b_enc = nn.Parameter(torch.zeros(m))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.log_threshold = nn.Parameter(torch.full((m,), math.log(0.01)))  # jumprelu_init_threshold
        self.bandwidth = 0.05  # jumprelu_bandwidth
        self.l0_coef = sparsity
        self.sparsity_warmup = sched['sparsity_warmup']  # l0_warm_up_steps (default 0)

    def _pre(self, x):
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc  # apply_b_dec_to_input = True

    def encode(self, x):
        pre = self._pre(x)
        return torch.relu(pre) * (pre > torch.exp(self.log_threshold)).to(pre.dtype)

    def loss(self, x, step):
        pre = self._pre(x)
        theta = torch.exp(self.log_threshold)
        f = JumpReLUFn.apply(pre, theta, self.bandwidth)
        x_hat = f @ self.W_dec + self.b_dec
        l0 = StepFn.apply(pre, theta, self.bandwidth).sum(-1)
        scale = min(step / self.sparsity_warmup, 1.0) if self.sparsity_warmup else 1.0
        return mse_sum(x, x_hat) + (self.l0_coef * scale * l0).mean(), f


# name -> how to build and train it. lr_default: the reference's own default (tuned for 10^8-10^9 tokens);
# betas, clip, schedule (fractions of the run), normalisation, sparsity knob ('lambda' calibrated to the target L0,
# 'k' = target, 'target' = the recipe's own target-L0 mechanism), initial lambda for the calibration.
RECIPES = {
    'dl-relu': dict(cls=DlRelu, knob='lambda', lam0=0.5, lr_default=1e-3, betas=(0.9, 0.999), clip=1.0,
                    warmup=0.01, decay_start=0.8, sparsity_warmup=0.05, norm='unit-msn',
                    ref='dictionary_learning trainers/standard.py StandardTrainerAprilUpdate'),
    'dl-gated': dict(cls=DlGated, knob='lambda', lam0=0.3, lr_default=5e-5, betas=(0.0, 0.999), clip=None,
                     warmup=0.01, decay_start=0.8, sparsity_warmup=0.05, norm='unit-msn',
                     ref='dictionary_learning trainers/gdm.py GatedSAETrainer'),
    'dl-topk': dict(cls=DlTopK, knob='k', lr_default=2e-4 / math.sqrt(512 / 2 ** 14), betas=(0.9, 0.999), clip=1.0,
                    warmup=0.01, decay_start=0.8, sparsity_warmup=0.0, norm='unit-msn',
                    ref='dictionary_learning trainers/top_k.py TopKTrainer'),
    'dl-batchtopk': dict(cls=DlTopK, knob='k', batch_topk=True, lr_default=2e-4 / math.sqrt(512 / 2 ** 14),
                         betas=(0.9, 0.999), clip=1.0, warmup=0.01, decay_start=0.8, sparsity_warmup=0.0,
                         norm='unit-msn', ref='dictionary_learning trainers/batch_top_k.py BatchTopKTrainer'),
    'dl-jumprelu': dict(cls=DlJumpRelu, knob='target', lr_default=7e-5, betas=(0.0, 0.999), clip=1.0,
                        warmup=0.01, decay_start=0.8, sparsity_warmup=0.05, norm='unit-msn',
                        ref='dictionary_learning trainers/jumprelu.py JumpReluTrainer'),
    'sl-jumprelu': dict(cls=SlJumpRelu, knob='lambda', lam0=0.1, lr_default=3e-4, betas=(0.9, 0.999), clip=1.0,
                        warmup=0.0, decay_start=None, sparsity_warmup=0.0, norm='sqrt-d-mean-norm',
                        ref='SAELens sae_lens/saes/jumprelu_sae.py JumpReLUTrainingSAE (step mode)'),
}


def input_scale(x, norm):
    """Divide inputs by this: unit mean squared norm (dictionary_learning get_norm_factor) or E||x|| = sqrt(d)
    (SAELens normalize_activations = expected_average_only_in)."""
    if norm == 'unit-msn':
        return float(x.pow(2).sum(-1).mean().sqrt())
    if norm == 'sqrt-d-mean-norm':
        return float(x.norm(dim=-1).mean() / math.sqrt(x.shape[1]))
    raise ValueError(norm)


def lr_factor(step, steps, warmup_steps, decay_start):
    """dictionary_learning trainers/trainer.py get_lr_schedule: linear warm-up from 0, constant, then linear decay
    to 0 from decay_start."""
    if warmup_steps and step < warmup_steps:
        return step / warmup_steps
    if decay_start is not None and step >= decay_start:
        return (steps - step) / (steps - decay_start)
    return 1.0


# ----------------------------------------------------------------------------------------------------------------
# Train and evaluate one SAE
# ----------------------------------------------------------------------------------------------------------------

def train_one(recipe_name, sparsity, lr, seed, data, args):
    r = RECIPES[recipe_name]
    train_x = data['train']
    n = min(args.tokens, train_x.shape[0])
    steps = n // args.batch
    scale = data['scales'][r['norm']]
    sched = {
        'sparsity_warmup': int(round(r['sparsity_warmup'] * steps)),
        'dead_tokens': int(args.dead_window * n),
    }
    gen = torch.Generator().manual_seed(1000 + seed)
    torch.manual_seed(seed)
    kwargs = {'batch_topk': True} if r.get('batch_topk') else {}
    model = r['cls'](train_x.shape[1], args.d_sae, sparsity, gen, steps, sched, **kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=r['betas'])
    warmup_steps = int(round(r['warmup'] * steps))
    decay_start = int(r['decay_start'] * steps) if r['decay_start'] is not None else None
    perm = torch.randperm(n, generator=gen)[: steps * args.batch]  # one epoch, a seeded order per seed
    fired_late = torch.zeros(args.d_sae, dtype=torch.bool)
    late_from = int(0.8 * steps)
    losses = []
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g['lr'] = lr * lr_factor(step, steps, warmup_steps, decay_start)
        x = train_x[perm[step * args.batch:(step + 1) * args.batch]] / scale
        loss, f = model.loss(x, step)
        if not torch.isfinite(loss):
            return {'diverged': True, 'step': step}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if hasattr(model, 'before_step'):
            model.before_step()
        if r['clip'] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), r['clip'])
        opt.step()
        if hasattr(model, 'after_step'):
            model.after_step()
        losses.append(float(loss))
        if step >= late_from:
            fired_late |= (f.detach() > 0).any(0)
    if hasattr(model, 'finish'):
        model.finish(train_x[:n], scale, args.batch, gen)
    train_s = time.time() - t0
    last = max(1, steps // 5)
    curve = [float(np.mean(losses[i:i + last])) for i in range(0, steps - last + 1, last)]
    return {
        'model': model, 'scale': scale, 'steps': steps, 'train_s': train_s,
        'dead_train_window': float((~fired_late).float().mean()),
        'loss_fifths': curve,
        'loss_drop_last20pct': (curve[-2] - curve[-1]) / abs(curve[-2]) if len(curve) >= 2 else None,
    }


@torch.no_grad()
def evaluate(model, scale, x, batch=8192):
    """metrics.ts MetricsAccumulator, on raw activations: SSE and the per-dimension variance about the evaluation
    set's mean in float64."""
    m = None
    sse = 0.0
    hh = 0.0
    xh = 0.0
    l0_sum = 0.0
    firing = None
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        f = model.encode(xb / scale)
        x_hat = (f @ model.W_dec + model.b_dec) * scale
        e = (xb - x_hat).double()
        sse += float(e.pow(2).sum())
        hh += float(x_hat.double().pow(2).sum())
        xh += float((xb.double() * x_hat.double()).sum())
        nz = f != 0
        l0_sum += float(nz.sum())
        firing = nz.any(0) if firing is None else (firing | nz.any(0))
    xd = x.double()
    total_var = float((xd - xd.mean(0)).pow(2).sum())
    rows = x.shape[0]
    return {
        'fvu': sse / total_var, 'l0': l0_sum / rows, 'mse': sse / rows,
        'shrinkage': hh / xh if xh else None, 'dead': float((~firing).float().mean()),
    }


# ----------------------------------------------------------------------------------------------------------------
# Runs with a JSON cache; lambda calibration; lr selection
# ----------------------------------------------------------------------------------------------------------------

def run_key(recipe, sparsity, lr, seed, args):
    spec = {'v': CODE_VERSION, 'recipe': recipe, 'sparsity': sparsity, 'lr': lr, 'seed': seed, 'tokens': args.tokens,
            'batch': args.batch, 'd_sae': args.d_sae, 'dead_window': args.dead_window, 'data': args.data_id}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16], spec


def run(recipe, sparsity, lr, seed, data, args, log):
    key, spec = run_key(recipe, sparsity, lr, seed, args)
    path = os.path.join(args.out, 'runs', f'{key}.json')
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    res = train_one(recipe, sparsity, lr, seed, data, args)
    if res.get('diverged'):
        out = {**spec, 'diverged': True, 'select': None, 'heldout': None}
    else:
        model = res.pop('model')
        out = {**spec, **{k: v for k, v in res.items() if k != 'scale'}, 'input_scale': res['scale'],
               'select': evaluate(model, res['scale'], data['select']),
               'heldout': evaluate(model, res['scale'], data['heldout'])}
        if getattr(model, 'threshold', None) is not None and not isinstance(model.threshold, torch.Tensor):
            out['inference_threshold'] = model.threshold
    out['wall_s'] = time.time() - t0
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(out, f)
    os.replace(tmp, path)  # atomic: a finished run is never half-written
    s = out['select']
    log(f"  {recipe:13s} sparsity={sparsity:<10.4g} lr={lr:<8.2g} seed={seed} "
        + (f"select L0={s['l0']:.2f} FVU={s['fvu']:.4f} dead={s['dead']:.2f}" if s else 'diverged')
        + f"  ({out['wall_s']:.1f} s)")
    return out


def calibrate(recipe, target, lr, seed, data, args, log, lam_start):
    """Secant search in (log lambda, log L0) until the selection-slice L0 is within tolerance of the target; every
    run is a full-length training run. Returns the run closest to the target."""
    tried = cached_tries(recipe, lr, seed, args)  # runs other processes (or earlier sessions) already finished
    lam = lam_start
    if tried:
        near = min(tried, key=lambda t: abs(math.log(max(t[1], 1e-3) / target)))
        if abs(near[1] / target - 1) <= args.tolerance:
            return near[2], near[0]
        lam = next_lambda(tried, target)
    for _ in range(max(1, args.max_calib - len(tried))):
        res = run(recipe, lam, lr, seed, data, args, log)
        if res['select'] is None or res['select']['l0'] <= 0:
            tried.append((lam, 1e-3, res))
            lam /= 4
            continue
        l0 = res['select']['l0']
        tried.append((lam, l0, res))
        if abs(l0 / target - 1) <= args.tolerance:
            break
        ok = [(a, b) for a, b, _ in tried if b > 1e-3]
        if len(ok) >= 2 and abs(math.log(ok[-1][1] / ok[-2][1])) < 0.05 and abs(math.log(ok[-1][0] / ok[-2][0])) > 0.5:
            log(f'  L0 does not respond to lambda at lr {lr:g} (under Adam only the threshold moves); stopping')
            break
        lam = next_lambda(tried, target)
    best = min(tried, key=lambda t: abs(math.log(max(t[1], 1e-3) / target)))
    return best[2], best[0]


def next_lambda(tried, target):
    """Secant step in (log lambda, log L0) through the two tries nearest the target (first step: L0 ~ 1/lambda)."""
    ok = sorted([(a, b) for a, b, _ in tried if b > 1e-3], key=lambda t: abs(math.log(t[1] / target)))
    if not ok:
        return min(a for a, _, _ in tried) / 4
    a2, b2 = ok[0]
    slope = -1.0
    if len(ok) >= 2:
        a1, b1 = ok[1]
        if a1 != a2:
            slope = (math.log(b2) - math.log(b1)) / (math.log(a2) - math.log(a1))
        if not (-5 < slope < -0.05):
            slope = -1.0
    step = (math.log(target) - math.log(b2)) / slope
    return math.exp(math.log(a2) + max(-2.5, min(2.5, step)))


def cached_tries(recipe, lr, seed, args):
    """(lambda, selection L0, run) of every finished run of this recipe, lr and seed at this budget and data."""
    out = []
    folder = os.path.join(args.out, 'runs')
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.json'):
            continue
        with open(os.path.join(folder, name)) as f:
            x = json.load(f)
        same = all(x.get(k) == v for k, v in run_key(recipe, x['sparsity'], lr, seed, args)[1].items() if k != 'sparsity')
        if same and x['sparsity'] == x['sparsity']:
            out.append((x['sparsity'], x['select']['l0'] if x.get('select') else 1e-3, x))
    return sorted(out, key=lambda t: t[0])


def point(recipe, target, lr, seed, data, args, log, lam_hint=None):
    r = RECIPES[recipe]
    if r['knob'] in ('k', 'target'):
        return run(recipe, target, lr, seed, data, args, log), target
    return calibrate(recipe, target, lr, seed, data, args, log, lam_hint or r['lam0'])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--train', required=True, help='train-split activation store (saelab harvest)')
    p.add_argument('--heldout', required=True, help='validation-split activation store: every reported metric')
    p.add_argument('--out', required=True)
    p.add_argument('--recipes', default=','.join(RECIPES))
    p.add_argument('--targets', default='8,16,32')
    p.add_argument('--tune-target', type=int, default=16)
    p.add_argument('--lrs', default='3e-4,1e-3,3e-3')
    p.add_argument('--extra-seed-targets', default='16', help="targets that get the seeds after the first ('': all)")
    p.add_argument('--seeds', default='0,1', help='the first seed tunes; the others repeat the chosen settings')
    p.add_argument('--tokens', type=int, default=1_000_448, help='training rows per SAE (one epoch)')
    p.add_argument('--batch', type=int, default=1024)
    p.add_argument('--d-sae', type=int, default=512)
    p.add_argument('--select-rows', type=int, default=50_000)
    p.add_argument('--dead-window', type=float, default=0.1,
                   help='AuxK: a latent is dead after this fraction of the run without firing')
    p.add_argument('--tolerance', type=float, default=0.15)
    p.add_argument('--max-calib', type=int, default=4)
    p.add_argument('--threads', type=int, default=1, help='torch threads (0: os.cpu_count())')
    p.add_argument('--at-lr', type=float, default=None, help='helper process: only --targets at this lr, first seed')
    p.add_argument('--tune-only', action='store_true', help='only the lr grid at the tuning target (a helper process)')
    p.add_argument('--report-only', action='store_true', help='merge OUT/recipes/*.json into the report and exit')
    args = p.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    os.makedirs(os.path.join(args.out, 'recipes'), exist_ok=True)
    os.makedirs(os.path.join(args.out, 'runs'), exist_ok=True)
    logf = open(os.path.join(args.out, 'log.txt'), 'a')

    def log(s):
        print(s, flush=True)
        logf.write(s + '\n')
        logf.flush()

    t_start = time.time()
    if args.report_only:
        write_results(args)
        return
    train_all, m_train = load_store(args.train)
    heldout, m_held = load_store(args.heldout)
    if train_all.shape[0] < args.tokens + args.select_rows:
        sys.exit(f'{args.train}: {train_all.shape[0]} rows, need {args.tokens} training + {args.select_rows} selection')
    if m_train['corpus']['split'] != 'train' or m_held['corpus']['split'] == 'train':
        sys.exit('--train must be a train-split store and --heldout a validation/test-split store')
    train = train_all[: args.tokens]
    select = train_all[-args.select_rows:]
    args.data_id = hashlib.sha256(json.dumps([m_train['shards'], m_held['shards'], args.select_rows]).encode()).hexdigest()[:16]
    data = {'train': train, 'select': select, 'heldout': heldout,
            'scales': {k: input_scale(train, k) for k in ('unit-msn', 'sqrt-d-mean-norm')}}
    rows = {'train': [0, args.tokens], 'select': [train_all.shape[0] - args.select_rows, train_all.shape[0]],
            'heldout': [0, heldout.shape[0]]}
    log(f'data: train {tuple(train.shape)} rows {rows["train"]} of {args.train}; select rows {rows["select"]} of '
        f'{args.train}; held-out {tuple(heldout.shape)} ({m_held["corpus"]["split"]} split) from {args.heldout}; '
        f'torch {torch.__version__}, {torch.get_num_threads()} threads')

    targets = [int(t) for t in args.targets.split(',')]
    lrs = [float(v) for v in args.lrs.split(',')]
    seeds = [int(s) for s in args.seeds.split(',')]
    extra_seed_targets = [int(t) for t in args.extra_seed_targets.split(',')] if args.extra_seed_targets else targets
    for recipe in args.recipes.split(','):
        r = RECIPES[recipe]
        log(f'== {recipe}: {r["ref"]}')
        t_rec = time.time()
        if args.at_lr:  # a helper process: points at a given lr (the main process finds them in the run cache)
            for target in targets:
                point(recipe, target, args.at_lr, seeds[0], data, args, log,
                      None if r['knob'] != 'lambda' else r['lam0'] * (args.tune_target / target))
            continue
        # 1. lr grid at the tuning target, first seed, scored by selection-slice FVU (lambda calibrated per lr).
        grid = {}
        hint = None
        for lr in lrs:
            res, lam = point(recipe, args.tune_target, lr, seeds[0], data, args, log, hint)
            grid[lr] = (res, lam)
            hint = lam if res['select'] else hint
        if args.tune_only:  # a helper process: fill the run cache for these lrs, leave the rest to the main one
            continue
        best_lr = min(grid, key=lambda v: lr_score(grid[v][0], args.tune_target, args.tolerance))
        if best_lr == max(lrs):  # the best is at the top edge: extend the grid once
            lr = best_lr * (10 / 3 if abs(best_lr / 3e-3 - 1) < 1e-9 else 3)
            res, lam = point(recipe, args.tune_target, lr, seeds[0], data, args, log, grid[best_lr][1])
            grid[lr] = (res, lam)
            if lr_score(res, args.tune_target, args.tolerance) < lr_score(grid[best_lr][0], args.tune_target, args.tolerance):
                best_lr = lr
        log(f'  chosen lr {best_lr:g}')
        # 2. every target at the chosen lr (lambda calibrated on the selection slice), then the other seeds.
        pts = []
        lam_by_target = {}
        reached = abs(math.log(max(grid[best_lr][0]['select']['l0'], 1e-3) / args.tune_target)) <= math.log(1 + 2 * args.tolerance) \
            if grid[best_lr][0]['select'] else False
        for target in targets:
            if not reached and target != args.tune_target:
                log(f'  skipping L0 {target}: no lr of the grid reached L0 {args.tune_target}')
                continue
            if target == args.tune_target:
                res, lam = grid[best_lr]
            else:
                near = grid[best_lr][1] if r['knob'] == 'lambda' else None
                if near is not None:
                    near = near * (args.tune_target / target)  # L0 ~ 1/lambda as a first guess
                res, lam = point(recipe, target, best_lr, seeds[0], data, args, log, near)
            lam_by_target[target] = lam
            more = seeds[1:] if target in extra_seed_targets else []
            runs = [res] + [run(recipe, lam, best_lr, s, data, args, log) for s in more]
            pts.append(summarise_point(recipe, target, lam, best_lr, runs))
        result = {
            'recipe': recipe, 'reference': r['ref'], 'knob': r['knob'], 'lr_default': r['lr_default'],
            'normalisation': r['norm'], 'chosen_lr': best_lr,
            'lr_grid': [{'lr': lr, 'sparsity': g[1], 'select_fvu': g[0]['select']['fvu'] if g[0]['select'] else None,
                         'select_l0': g[0]['select']['l0'] if g[0]['select'] else None} for lr, g in sorted(grid.items())],
            'points': pts, 'wall_s': time.time() - t_rec,
            'settings': {k: v for k, v in vars(args).items()}, 'rows': rows,
            'torch': torch.__version__, 'threads': torch.get_num_threads(),
        }
        path = os.path.join(args.out, 'recipes', f'{recipe}.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(path + '.tmp', path)
        write_results(args)
    log(f'done in {time.time() - t_start:.0f} s')


def lr_score(res, target, tolerance):
    """Selection-slice FVU for runs that landed on the target L0 (within twice the calibration tolerance); runs that
    missed rank after all of those, by how far they missed."""
    if not res.get('select'):
        return math.inf
    miss = abs(math.log(max(res['select']['l0'], 1e-3) / target))
    return res['select']['fvu'] if miss <= math.log(1 + 2 * tolerance) else 10.0 + miss


def summarise_point(recipe, target, lam, lr, runs):
    ok = [x for x in runs if x.get('heldout')]

    def stat(key, part='heldout'):
        v = [x[part][key] for x in ok]
        return {'mean': float(np.mean(v)), 'sd': float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, 'values': v}

    return {
        'target_l0': target, 'sparsity': lam, 'lr': lr, 'seeds': [x['seed'] for x in ok],
        'fvu': stat('fvu'), 'l0': stat('l0'), 'dead': stat('dead'), 'shrinkage': stat('shrinkage'),
        'dead_train_window': {'mean': float(np.mean([x['dead_train_window'] for x in ok]))},
        'loss_drop_last20pct': [x['loss_drop_last20pct'] for x in ok],
        'select_l0': [x['select']['l0'] for x in ok],
        'train_s': [x['train_s'] for x in ok], 'steps': ok[0]['steps'] if ok else None,
        'inference_threshold': [x.get('inference_threshold') for x in ok if x.get('inference_threshold') is not None],
    }


def partial_runs(out, finished):
    """Cached runs of recipes that have not finished (so an interrupted session still reports what it measured)."""
    runs = []
    folder = os.path.join(out, 'runs')
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith('.json'):
            with open(os.path.join(folder, name)) as f:
                x = json.load(f)
            if x['recipe'] not in finished:
                runs.append({k: x.get(k) for k in ('recipe', 'sparsity', 'lr', 'seed', 'select', 'heldout', 'wall_s',
                                                   'dead_train_window', 'loss_drop_last20pct', 'train_s', 'steps',
                                                   'inference_threshold', 'loss_fifths')})
    return sorted(runs, key=lambda x: (list(RECIPES).index(x['recipe']), x['lr'], x['sparsity'], x['seed']))


def from_cache(recipe, args):
    """A recipe's result rebuilt from the run cache with the same rules as main() (lr chosen at the tuning target by
    lr_score, then the run nearest each target at that lr), for recipes whose pipeline did not finish: marks which lrs
    of the grid and which targets are missing."""
    r = RECIPES[recipe]
    runs = [x for x in partial_runs(args.out, set()) if x['recipe'] == recipe and x['seed'] == 0 and x['select']]
    if not runs:
        return None
    miss = lambda x, t: abs(math.log(max(x['select']['l0'], 1e-3) / t))
    grid = {}
    for x in runs:
        if x['lr'] not in grid or miss(x, args.tune_target) < miss(grid[x['lr']], args.tune_target):
            grid[x['lr']] = x
    def score(lr):
        near = grid[lr]
        if miss(near, args.tune_target) <= math.log(1 + args.tolerance):
            return near['select']['fvu']
        interp = interpolate([x for x in runs if x['lr'] == lr], args.tune_target)
        return interp['select_fvu'] if interp else lr_score(near, args.tune_target, args.tolerance)

    best_lr = min(grid, key=score)
    pts = []
    interpolated = {}
    for target in [int(t) for t in args.targets.split(',')]:
        at = [x for x in runs if x['lr'] == best_lr]
        near = min(at, key=lambda x: miss(x, target))
        if miss(near, target) > math.log(1 + 2 * args.tolerance):
            interp = interpolate(at, target)
            if interp:
                interpolated[target] = interp
            continue  # no run at this lr landed near this target
        seeds = [y for y in partial_runs(args.out, set()) if y['recipe'] == recipe and y['lr'] == best_lr
                 and y['sparsity'] == near['sparsity'] and y['heldout']]
        pts.append(summarise_point(recipe, target, near['sparsity'], best_lr, seeds))
    lrs = [float(v) for v in args.lrs.split(',')]
    return {
        'recipe': recipe, 'reference': r['ref'], 'knob': r['knob'], 'lr_default': r['lr_default'],
        'normalisation': r['norm'], 'chosen_lr': best_lr, 'from_cache': True,
        'lr_grid_missing': [v for v in lrs if v not in grid],
        'lr_grid': [{'lr': lr, 'sparsity': g['sparsity'], 'select_fvu': g['select']['fvu'], 'select_l0': g['select']['l0'],
                     'select_fvu_interpolated': (interpolate([x for x in runs if x['lr'] == lr], args.tune_target) or {}).get('select_fvu')}
                    for lr, g in sorted(grid.items())],
        'points': pts, 'interpolated_points': interpolated,
    }


def interpolate(runs, target):
    """FVU at the target L0 from the two runs that bracket it most tightly, linear in (log L0, log FVU): for
    lambda-calibrations that did not land within tolerance before the session ended."""
    below = [x for x in runs if x['select']['l0'] < target and x['heldout']]
    above = [x for x in runs if x['select']['l0'] >= target and x['heldout']]
    if not below or not above:
        return None
    lo = max(below, key=lambda x: x['select']['l0'])
    hi = min(above, key=lambda x: x['select']['l0'])
    out = {'from': [{'sparsity': x['sparsity'], 'select_l0': x['select']['l0'], 'heldout_l0': x['heldout']['l0'],
                     'heldout_fvu': x['heldout']['fvu']} for x in (lo, hi)]}
    for part, key in (('select', 'select_fvu'), ('heldout', 'heldout_fvu')):
        l1, l2 = math.log(lo[part]['l0']), math.log(hi[part]['l0'])
        f1, f2 = math.log(lo[part]['fvu']), math.log(hi[part]['fvu'])
        w = (math.log(target) - l1) / (l2 - l1) if l2 != l1 else 0.5
        out[key] = math.exp(f1 + w * (f2 - f1))
    return out


def write_results(args):
    results = {}
    folder = os.path.join(args.out, 'recipes')
    for name in RECIPES:  # a fixed order
        path = os.path.join(folder, f'{name}.json')
        if os.path.exists(path):
            with open(path) as f:
                results[name] = json.load(f)
        elif args.report_only:
            rebuilt = from_cache(name, args)
            if rebuilt:
                results[name] = rebuilt
    doc = {
        'what': 'reference-recipe SAEs (tools/peers/reference_recipes.py) on saelab activation stores',
        'results': results,
    }
    tmp = os.path.join(args.out, 'results.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, os.path.join(args.out, 'results.json'))
    lines = ['| recipe | target L0 | held-out L0 | held-out FVU | dead (held-out) | dead (last 20% of training) | '
             'shrinkage | lr | λ / k | seeds | train s / SAE |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for name, res in results.items():
        for pt in res['points']:
            sd = lambda s, fmt: (f"{s['mean']:{fmt}} ± {s['sd']:{fmt}}" if len(s['values']) > 1 else f"{s['mean']:{fmt}}")
            star = '*' if res.get('from_cache') else ''
            lines.append(f"| {name}{star} | {pt['target_l0']} | {sd(pt['l0'], '.2f')} | {sd(pt['fvu'], '.4f')} | "
                         f"{sd(pt['dead'], '.3f')} | {pt['dead_train_window']['mean']:.3f} | "
                         f"{pt['shrinkage']['mean']:.3f} | {pt['lr']:g} | {pt['sparsity']:.4g} | {len(pt['seeds'])} | "
                         f"{np.mean(pt['train_s']):.1f} |")
    for name, res in results.items():
        for target, ip in sorted((res.get('interpolated_points') or {}).items(), key=lambda t: int(t[0])):
            src = '; '.join(f"λ {f['sparsity']:.4g}: L0 {f['heldout_l0']:.2f}, FVU {f['heldout_fvu']:.4f}" for f in ip['from'])
            lines.append(f"| {name}* | {target} | (interpolated) | {ip['heldout_fvu']:.4f} | | | | {res['chosen_lr']:g} | {src} | 1 | |")
    lines += ['', '| recipe | lr (grid, at L0 ≈ %d) | λ / k | selection-slice L0 | selection-slice FVU | '
              'selection FVU interpolated to L0 %d |' % (args.tune_target, args.tune_target),
              '|---|---|---|---|---|---|']
    for name, res in results.items():
        for g in res['lr_grid']:
            mark = ' (chosen)' if g['lr'] == res['chosen_lr'] else ''
            if g is res['lr_grid'][-1] and res.get('lr_grid_missing'):
                mark += f" (not run: {', '.join(f'{v:g}' for v in res['lr_grid_missing'])})"

            ipf = g.get('select_fvu_interpolated')
            lines.append(f"| {name} | {g['lr']:g}{mark} | {g['sparsity']:.4g} | "
                         f"{g['select_l0']:.2f} | {g['select_fvu']:.4f} | {'' if ipf is None else f'{ipf:.4f}'} |" if g['select_fvu'] is not None else
                         f"| {name} | {g['lr']:g} | {g['sparsity']:.4g} | diverged | diverged |")
    partial = partial_runs(args.out, {k for k, v in results.items() if not v.get('from_cache')})
    if partial:
        doc['unfinished_recipes_runs'] = partial
        lines += ['', 'Every run of the recipes whose pipeline did not finish in the session (the rows above marked * are '
                  'rebuilt from these by the same rules):',
                  '', '| recipe | λ / k | lr | seed | selection L0 | selection FVU | held-out L0 | held-out FVU | held-out dead |',
                  '|---|---|---|---|---|---|---|---|---|']
        for x in partial:
            sel, held = x['select'] or {}, x['heldout'] or {}
            lines.append(f"| {x['recipe']} | {x['sparsity']:.4g} | {x['lr']:g} | {x['seed']} | {sel.get('l0', float('nan')):.2f} | "
                         f"{sel.get('fvu', float('nan')):.4f} | {held.get('l0', float('nan')):.2f} | "
                         f"{held.get('fvu', float('nan')):.4f} | {held.get('dead', float('nan')):.3f} |")
        tmp = os.path.join(args.out, 'results.json.tmp')
        with open(tmp, 'w') as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, os.path.join(args.out, 'results.json'))
    tmp = os.path.join(args.out, 'results.md.tmp')
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, os.path.join(args.out, 'results.md'))


if __name__ == '__main__':
    main()
