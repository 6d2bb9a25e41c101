"""Vectorized ensemble training: zoo members that share an architecture and a batch size train as one.

The per-model trainer (:func:`harness.ml.training.train`) spends most of its time on per-step Python and
dispatch overhead for the tiny MLPs and 1-D CNNs of paper A. Here the M members of a group keep their
parameters stacked (a leading member dimension) and every step is one batched forward/backward:

- MLP layers: ``torch.baddbmm`` over stacked weights ``[M, out, in]``;
- Conv1d layers: one grouped convolution (``groups=M``) over the members' channels, run as a height-1
  ``conv2d`` in channels-last memory format (oneDNN's faster path here);
- the loss is the sum of the members' own mean cross-entropies, so each member's gradient is exactly
  its own (no parameter is shared);
- SGD (momentum, weight decay) and Adam are applied per member with the member's own lr, momentum and
  weight decay, following ``torch.optim``'s single-tensor (CPU) update formulas.

Each member keeps everything the per-model trainer draws: its initialisation (built by
:func:`harness.ml.models.build_model` from its own seed, then stacked), its minibatch order (its own
``torch.Generator`` seeded with its seed, one ``randperm`` per epoch), its dropout masks (its own generator
seeded with :func:`harness.ml.training.dropout_seed`, drawn in the same layer order and shape as
``nn.Dropout`` draws them from the global RNG -- ``bernoulli_(1 - p)`` then ``/ (1 - p)``), and its own
stopping rule (full-train-set CE in eval mode every ``check_every`` epochs and after its last epoch). A
member that stops is removed from the stacked tensors, so it stops changing; its recorded epochs, steps
and per-epoch losses are the ones it would have alone. Its final train/test loss and accuracy are
computed by :func:`harness.ml.training.evaluate` on the member's own module, as the per-model trainer does.

How close to the per-model trainer (measured here, torch 2.13.0 CPU, one thread): MLP parameters come out
BIT-IDENTICAL (SGD and Adam, with or without dropout: the batched matmul runs the same GEMM kernel per
member, and the updates are the same floating-point operations in the same order); so did all 16 smoke-grid
models over full trainings, final losses equal to the last bit. The recorded per-epoch mean losses differ
by ~1e-7 (the minibatch mean is reduced by another kernel; gradients are the same). CNNs are not
bit-identical (the grouped channels-last convolution sums in another order): parameters agree to <= 1.3e-6 after an epoch (SGD 3e-8),
and trajectories may drift apart slowly. The tests use tolerances, not bit equality (another BLAS build
need not keep it): ``tests/ml/test_ensemble.py``, ``benchmarks/test_zoo_ensemble_bench.py``. For the same
reason a CNN member's bytes depend on the group it trained in; MLP members' do not (tested).

``TrainResult.seconds`` of a member is the group's wall time from its start until that member stopped
(shared with the other members: the group trains them at once). ``time_cap_s`` is not supported (a
wall-clock cap of a shared run has no per-member meaning): such configs train with the per-model trainer.
The caller fixes the thread count (``torch.set_num_threads(1)``), as for the per-model trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.ml.data import Dataset
from harness.ml.models import CNN1D, MLP
from harness.ml.training import TrainConfig, TrainResult, dropout_seed, evaluate

TRAINER_NAME = "ensemble"
TRAINER_VERSION = 1  # bump when the ensemble trainer's numerics change (changes every ensemble key)
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam defaults, as the per-model trainer uses them
ADAM_EPS = 1e-8
EVAL_BATCH = 8192  # training.evaluate's chunk size


@dataclass
class _Layer:
    """One stacked layer: weight [M, out, in(, k)], bias [M, out]; ``dropout`` after its ReLU (per member)."""

    kind: str  # "linear" | "conv"
    relu: bool
    dropout: list[float]


def _layout(model: nn.Module) -> tuple[str, list[tuple[nn.Module, bool, float]]]:
    """(arch, [(Linear/Conv1d module, relu after it, dropout p after it)]) of an MLP or CNN1D."""
    if isinstance(model, MLP):
        mods = list(model.net)
        arch = "mlp"
    elif isinstance(model, CNN1D):
        mods = [*model.features, model.head]
        arch = "cnn1d"
    else:
        raise TypeError(f"ensemble training supports MLP and CNN1D, not {type(model).__name__}")
    out: list[tuple[nn.Module, bool, float]] = []
    for m in mods:
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            out.append((m, False, 0.0))
        elif isinstance(m, nn.ReLU):
            out[-1] = (out[-1][0], True, out[-1][2])
        elif isinstance(m, nn.Dropout):
            out[-1] = (out[-1][0], out[-1][1], float(m.p))
        else:
            raise TypeError(f"unexpected module {type(m).__name__} in {type(model).__name__}")
    return arch, out


def group_signature(model: nn.Module) -> tuple:
    """Models with equal signatures can train in one ensemble (same arch and parameter shapes)."""
    arch, layers = _layout(model)
    return (arch, tuple(tuple(m.weight.shape) for m, _, _ in layers), tuple(r for _, r, _ in layers))


class _Stack:
    """The active members' parameters, optimiser state and per-member hyperparameters, stacked."""

    def __init__(self, models: Sequence[nn.Module], cfgs: Sequence[TrainConfig]):
        self.arch, layouts = _layout(models[0])
        per_member = [_layout(m)[1] for m in models]
        self.layers = [
            _Layer(
                kind="conv" if isinstance(mod, nn.Conv1d) else "linear",
                relu=relu,
                dropout=[pm[i][2] for pm in per_member],
            )
            for i, (mod, relu, _) in enumerate(layouts)
        ]
        # w0, b0, w1, b1, ...; linear weights stored transposed ([M, in, out], contiguous), so the batched
        # matmul and its backward need no transposed copies; conv weights as [M, out, in, k]
        self.params: list[torch.Tensor] = []
        for i, (mod, _, _) in enumerate(layouts):
            ws = [pm[i][0].weight.detach() for pm in per_member]
            if isinstance(mod, nn.Linear):
                ws = [w.t() for w in ws]
            self.params.append(torch.stack(ws).contiguous().requires_grad_(True))
            self.params.append(torch.stack([pm[i][0].bias.detach() for pm in per_member]).requires_grad_(True))
        dt = self.params[0].dtype
        self.lr = torch.tensor([c.lr for c in cfgs], dtype=dt)
        self.lr64 = torch.tensor([c.lr for c in cfgs], dtype=torch.float64)  # Adam's step size, as torch
        self.momentum = torch.tensor([c.momentum for c in cfgs], dtype=dt)
        self.wd = torch.tensor([c.weight_decay for c in cfgs], dtype=dt)
        self.optimizer = cfgs[0].optimizer
        self.state: list[list[torch.Tensor]] = []  # per param: [momentum buf] or [exp_avg, exp_avg_sq]
        self.step_count = 0

    @property
    def size(self) -> int:
        return int(self.params[0].shape[0])

    def keep(self, rows: list[int]) -> None:
        """Drop every member not in ``rows`` (positions in the current stack)."""
        idx = torch.tensor(rows, dtype=torch.long)
        self.params = [p.detach()[idx].clone().requires_grad_(True) for p in self.params]
        self.lr, self.momentum, self.wd = self.lr[idx], self.momentum[idx], self.wd[idx]
        self.lr64 = self.lr64[idx]
        self.state = [[s[idx].clone() for s in st] for st in self.state]
        for layer in self.layers:
            layer.dropout = [layer.dropout[i] for i in rows]

    def member_state(self, row: int, model: nn.Module) -> None:
        """Copy the stacked parameters of member ``row`` into its module."""
        _, layers = _layout(model)
        with torch.no_grad():
            for i, (mod, _, _) in enumerate(layers):
                w = self.params[2 * i][row]
                mod.weight.copy_(w.t() if isinstance(mod, nn.Linear) else w)
                mod.bias.copy_(self.params[2 * i + 1][row])

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, masks: list[list[torch.Tensor | None]] | None) -> torch.Tensor:
        """Logits [M, B, classes] for inputs x [M, B, features]; ``masks[layer][member]`` in training."""
        m = self.size
        if self.arch == "mlp":
            h = x
            for i, layer in enumerate(self.layers):
                w, b = self.params[2 * i], self.params[2 * i + 1]
                h = torch.baddbmm(b.unsqueeze(1), h, w)
                if layer.relu:
                    h = F.relu(h)
                if masks is not None and masks[i] is not None:
                    h = h * torch.stack([mk if mk is not None else torch.ones_like(h[0]) for mk in masks[i]])
            return h
        # cnn1d: [B, M*channels, 1, L] through grouped 2-D convolutions (height 1) in channels-last memory
        # format -- measured 1.7x faster fwd+bwd than grouped conv1d for 4 members of w32 d3, batch 32 --
        # then the stacked linear head
        batch, length = x.shape[1], x.shape[2]
        cl = torch.channels_last
        h = x.transpose(0, 1).unsqueeze(2).contiguous(memory_format=cl)  # [B, M, 1, L]: a channel per member
        for i, layer in enumerate(self.layers[:-1]):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            w4 = w.reshape(-1, w.shape[2], 1, w.shape[3]).contiguous(memory_format=cl)
            h = F.conv2d(h, w4, b.reshape(-1), padding=(0, 2), groups=m)
            if layer.relu:
                h = F.relu(h)
            if masks is not None and masks[i] is not None:
                c = w.shape[1]
                full = [mk if mk is not None else torch.ones(batch, c, length) for mk in masks[i]]
                h = h * torch.stack(full, dim=1).reshape(batch, m * c, 1, length)
        feats = h.reshape(batch, m, -1, length).mean(dim=3).transpose(0, 1)  # [M, B, C]
        w, b = self.params[-2], self.params[-1]
        return torch.baddbmm(b.unsqueeze(1), feats, w)

    def draw_masks(self, gens: list[torch.Generator], batch: int, features: int) -> list | None:
        """Dropout masks per layer and member, drawn as nn.Dropout draws them (shape, order, scaling)."""
        if not any(p > 0 for layer in self.layers for p in layer.dropout):
            return None
        out: list[list[torch.Tensor | None] | None] = []
        # nn.Dropout draws layer by layer within one member's forward; members are independent streams,
        # so drawing member-major or layer-major gives each member the same sequence.
        shapes = []
        for i, _layer in enumerate(self.layers):
            w = self.params[2 * i]
            if self.arch == "mlp":
                shapes.append((batch, int(w.shape[2])))
            else:
                shapes.append((batch, int(w.shape[1]), features))
        for i, layer in enumerate(self.layers):
            row: list[torch.Tensor | None] = []
            for j, p in enumerate(layer.dropout):
                if p > 0:
                    row.append(torch.empty(shapes[i]).bernoulli_(1 - p, generator=gens[j]).div_(1 - p))
                else:
                    row.append(None)
            out.append(row if any(r is not None for r in row) else None)
        return out

    # -- optimiser ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self) -> None:
        """One optimiser step for every member; in-place, fused where torch allows (no full-size temporaries
        in SGD: the per-member lr/momentum/weight decay broadcast from [M, 1, ...] views)."""
        self.step_count += 1
        first = not self.state
        for k, p in enumerate(self.params):
            g = p.grad
            shape = (-1,) + (1,) * (p.dim() - 1)
            neg_lr, mom, wd = -self.lr.view(shape), self.momentum.view(shape), self.wd.view(shape)
            if bool((self.wd != 0).any()):
                g.addcmul_(wd, p)  # grad + weight_decay * param (torch: d_p.add(param, alpha=wd))
            if self.optimizer == "sgd":
                if first:
                    self.state.append([g.clone()])
                else:
                    self.state[k][0].mul_(mom).add_(g)
                p.addcmul_(neg_lr, self.state[k][0])
            else:
                b1, b2 = ADAM_BETAS
                if first:
                    self.state.append([torch.zeros_like(p), torch.zeros_like(p)])
                exp_avg, exp_avg_sq = self.state[k]
                exp_avg.lerp_(g, 1 - b1)
                exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
                bc1 = 1 - b1**self.step_count
                bc2_sqrt = (1 - b2**self.step_count) ** 0.5
                denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(ADAM_EPS)
                # torch: param.addcdiv_(exp_avg, denom, value=-(lr / bc1)) with lr / bc1 in double
                neg_step = (-(self.lr64 / bc1)).to(p.dtype).view(shape)
                p.addcdiv_(neg_step * exp_avg, denom)  # the CPU kernel computes (value * t1) / t2
            p.grad = None


@torch.no_grad()
def _full_losses(stack: _Stack, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Mean full-set CE (nats) of every active member, eval mode (no dropout)."""
    m, n = stack.size, x.shape[0]
    totals = torch.zeros(m, dtype=torch.float64)
    for i in range(0, n, EVAL_BATCH):
        xb, yb = x[i : i + EVAL_BATCH], y[i : i + EVAL_BATCH]
        logits = stack.forward(xb.unsqueeze(0).expand(m, *xb.shape), None)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(m), reduction="none")
        totals += ce.view(m, -1).sum(dim=1).double()
    return (totals / n).tolist()


def train_ensemble(
    models: Sequence[nn.Module],
    data: Dataset,
    cfgs: Sequence[TrainConfig],
    seeds: Sequence[int],
    progress: Callable[[int, int, float], None] | None = None,
) -> list[TrainResult]:
    """Train ``models`` (in place) as one ensemble; one :class:`TrainResult` per member, in order.

    Members must share architecture and parameter shapes (:func:`group_signature`), ``batch_size`` and
    ``optimizer``; each has its own ``cfgs[i]`` (lr, momentum, weight decay, max_epochs,
    target_train_loss, check_every) and ``seeds[i]`` (data order and dropout masks, as in
    :func:`harness.ml.training.train`). ``progress(member, epoch, full_train_loss)`` at every check.
    """
    n_members = len(models)
    if not (n_members == len(cfgs) == len(seeds)) or n_members == 0:
        raise ValueError("train_ensemble needs one config and one seed per model (and at least one model)")
    sig = group_signature(models[0])
    for mdl, c in zip(models, cfgs, strict=True):
        if group_signature(mdl) != sig:
            raise ValueError("ensemble members must share architecture and parameter shapes")
        if c.batch_size != cfgs[0].batch_size or c.optimizer != cfgs[0].optimizer:
            raise ValueError("ensemble members must share batch_size and optimizer")
        if c.time_cap_s is not None:
            raise ValueError("the ensemble trainer has no per-member wall-clock cap: use the per-model trainer")
    for mdl in models:
        mdl.train()
    stack = _Stack(models, cfgs)
    x, y = data.x_train, data.y_train
    n, bs = x.shape[0], cfgs[0].batch_size
    order_gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    drop_gens = [torch.Generator().manual_seed(dropout_seed(int(s))) for s in seeds]
    active = list(range(n_members))  # member index of each stack row
    results: list[TrainResult | None] = [None] * n_members
    losses: list[list[float]] = [[] for _ in range(n_members)]
    steps = 0
    t0 = time.perf_counter()
    epoch = 0
    while active:
        epoch += 1
        perms = torch.stack([torch.randperm(n, generator=order_gens[j]) for j in active])
        running = torch.zeros(len(active), dtype=torch.float64)
        batches = 0
        for i in range(0, n, bs):
            idx = perms[:, i : i + bs]
            masks = stack.draw_masks([drop_gens[j] for j in active], idx.shape[1], x.shape[1])
            logits = stack.forward(x[idx], masks)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1), reduction="none")
            per_member = ce.view(len(active), -1).mean(dim=1)
            per_member.sum().backward()
            stack.step()
            running += per_member.detach().double()
            batches += 1
        steps += batches
        epoch_means = (running / max(batches, 1)).tolist()
        checking = [
            r
            for r, j in enumerate(active)
            if epoch % cfgs[j].check_every == 0 or epoch == cfgs[j].max_epochs
        ]
        full = _full_losses(stack, x, y) if checking else []
        stop: dict[int, str] = {}
        for r, j in enumerate(active):
            losses[j].append(epoch_means[r])
            if not math.isfinite(epoch_means[r]):
                stop[r] = "diverged"
                continue
            if r in checking:
                if progress is not None:
                    progress(j, epoch, full[r])
                if full[r] <= cfgs[j].target_train_loss:
                    stop[r] = "target_reached"
                    continue
            if epoch == cfgs[j].max_epochs:
                stop[r] = "max_epochs"
        if not stop:
            continue
        seconds = time.perf_counter() - t0
        for r, reason in stop.items():
            j = active[r]
            stack.member_state(r, models[j])
            results[j] = _finish(models[j], data, cfgs[j], epoch, steps, seconds, losses[j], reason)
        rows = [r for r in range(len(active)) if r not in stop]
        active = [active[r] for r in rows]
        if active:
            stack.keep(rows)
    return [r for r in results if r is not None]


def _finish(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    epochs: int,
    steps: int,
    seconds: float,
    losses: list[float],
    reason: str,
) -> TrainResult:
    model.eval()
    train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    return TrainResult(
        converged=bool(math.isfinite(train_loss) and train_loss <= cfg.target_train_loss),
        epochs=epochs,
        steps=steps,
        seconds=seconds,
        final_train_loss=train_loss,
        final_train_acc=train_acc,
        final_test_loss=test_loss,
        final_test_acc=test_acc,
        epoch_train_losses=list(losses),
        stop_reason=reason,
    )


__all__ = ["TRAINER_NAME", "TRAINER_VERSION", "group_signature", "train_ensemble"]
