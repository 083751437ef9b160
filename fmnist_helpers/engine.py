"""The one training loop: a stack of K models of one shape, trained side by side in one pass.

The study's recipe for every model: cross-entropy, plain SGD, batches of 32 drawn in a fresh
random order each epoch, optional L1/L2 penalties and early stopping. Notebook 01 shows it as a
plain 15-line PyTorch loop; this module runs the same recipe for many models at once.

The K models share their layer sizes and batch-norm placement (a :class:`Shape`); each one
(a :class:`Member`) has its own seed (initialisation, batch order, dropout masks, batch-norm
statistics), learning rate, penalties, dropout rate, number of epochs and early-stopping rule.
Their weights are stacked into ``(K, out, in)`` tensors and each linear layer is one batched
matrix product. A model that finishes, stops early or diverges leaves the stack; the rest go on.

**Same numbers alone or together** (on the CPU; tests check it). A model's arithmetic is its
own: every matrix product is a batched one (``torch.bmm``/``baddbmm``), one problem per model,
so a model's product is computed as if it were alone whatever the stack holds; elementwise
operations and reductions run over its own slice. One wide product shared by the models that
see the same images was faster on some CPUs, but MKL does not keep a column's value when such a
product widens: on AVX2 CPUs for blocks 10 wide, and under ``MKL_CBWR=COMPATIBLE`` at every
width (measured on an AMD EPYC, Zen 3, AVX2, torch 2.14.1, 2026-11-30). Per-model products kept
every value there, natively and in portable mode (:mod:`fmnist_helpers.kernels`). Their cost,
measured side by side against the wide products on that CPU (one epoch on the full data):
the same for 20 shallow-shaped models of four experiments (0.99x) and 5 wide ones (1.00x),
faster for 5 seeds of one model (0.66x to 0.68x: the shallow, deeper and batch-norm ones), since
the first layer's weight is kept as ``nn.Linear`` keeps it, ``(K, out, 784)``, and multiplied
from the left. The CPU computes with one thread: with several, MKL splits one product
differently from a batch of them, and the numbers would depend on the core count; the run
store gets its parallelism from whole stacks in separate processes. Evaluation takes 128 images
at a time (a product of 256 rows or more can take another kernel).

Why hand-written: ``torch.func.vmap`` cannot give each model its own dropout generator or
update batch-norm running statistics in place; ``torch.func.stack_module_state`` stacks the
models' initial weights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.func import stack_module_state
from torch.nn import functional as F

from .constraints import check, check_all
from .data import IMAGE_SIZE, N_CLASSES, FashionMNIST
from .history import History
from .models import build_mlp, check_architecture, check_recipe
from .settings import pick_device

BATCH_SIZE = 32  # the study's
STUDY_EVAL_BATCH = 32  # the study averaged per-batch accuracies over test batches of 32
EVAL_CHUNK = 128  # images per evaluation product: at most 128, so that the numbers never depend
# on K (MKL computes a product of 256 rows or more by another kernel when it is narrow)
TRAIN_SAMPLE = 10_000  # training rows evaluated after every epoch but a run's last (see History)
MASK_CHUNK = 1 << 20  # bytes of dropout masks drawn at once: 1 MB was faster than 8 or 1/8
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # nn.BatchNorm1d's defaults


@runtime_checkable
class StoppingRule(Protocol):
    """When a member stops training, decided from one loss per epoch: what the engine asks of
    a member's ``early_stopping``. :class:`EarlyStopping` is one; the planner's
    :class:`~fmnist_helpers.planner.Trajectory` (several runs read from one training) another.

    ``monitor``: the history column it reads (``"test_loss"`` or ``"val_loss"``).
    ``step(value, epoch)``: record an epoch's value; True when the member stops training.
    ``best_epoch``: the epoch its history reports as the best so far (None: none).
    ``run_ends_at(epoch)``: whether a run the member carries ends at ``epoch`` although the
    member trains on; there the engine measures ``train_acc`` on all the training rows, as at a
    member's last epoch (see :class:`~fmnist_helpers.history.History`).
    """

    @property
    def monitor(self) -> str: ...

    @property
    def best_epoch(self) -> int | None: ...

    def step(self, value: float, epoch: int) -> bool: ...

    def run_ends_at(self, epoch: int) -> bool: ...


class EarlyStopping:
    """Stop when ``monitor`` (a loss) has not dropped by ``min_delta`` for ``patience`` epochs.

    The study's rule: the loss must fall by at least 0.01; after three epochs without such a
    fall, training ends. ``against="best"`` measures the fall from the best loss so far (the
    usual reading); ``against="previous"`` from the epoch before ("decrease at least 0.01 in
    each epoch"), so a run that worsens and recovers counts each recovery as progress; a fall
    resets the count either way. The weights of the last epoch are kept (the study reports the
    last epoch), and :attr:`best_epoch` remembers the best one.
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.01, monitor: str = "test_loss",
                 against: str = "best"):
        check_all(patience=patience, min_delta=min_delta, monitor=monitor)
        check("against", against, label="against")
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.against = against
        self.best = self.previous = math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def step(self, value: float, epoch: int) -> bool:
        """Record one epoch's value; return True when training should stop."""
        reference = self.best if self.against == "best" else self.previous
        fell = reference - value >= self.min_delta - 1e-12  # "at least min_delta", float-safe
        self.bad_epochs = 0 if fell else self.bad_epochs + 1
        # "best": the loss of the last qualifying fall (Keras's rule); "previous": the lowest.
        if (fell and self.against == "best") or (self.against == "previous" and value < self.best):
            self.best, self.best_epoch = value, epoch
        self.previous = value
        return self.bad_epochs >= self.patience

    def run_ends_at(self, epoch: int) -> bool:
        """False: the one run this rule decides ends only where :meth:`step` says stop."""
        return False


@dataclass(frozen=True)
class Shape:
    """What the models of a stack share: linear layers (classifier included), width, batch norm."""

    n_linear: int = 3
    hidden: int = 10
    batch_norm: bool = False

    def __post_init__(self) -> None:
        check_architecture(self.n_linear, self.hidden, self.batch_norm)

    def sizes(self) -> list[int]:
        return [IMAGE_SIZE * IMAGE_SIZE] + [self.hidden] * (self.n_linear - 1) + [N_CLASSES]

    def n_params(self) -> int:
        """Trainable parameters: weights and biases, and batch norm's scale and shift."""
        sizes = self.sizes()
        linear = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
        return linear + 2 * self.hidden * (self.n_linear - 1) * self.batch_norm


@dataclass
class Member:
    """One model of a stack: its seed and its own hyperparameters.

    ``train_rows`` are the rows of ``data.train`` it trains on (None: all of them), and
    ``validation_rows`` the rows it is validated on, if any.
    """

    seed: int
    lr: float = 0.1
    epochs: int = 10
    dropout: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    l2_first: float = 0.0
    early_stopping: StoppingRule | None = None
    train_rows: torch.Tensor | None = None
    validation_rows: torch.Tensor | None = None

    def __post_init__(self) -> None:
        check_all(seed=self.seed, dropout=self.dropout)
        check_recipe(self.lr, self.epochs, self.l1, self.l2, self.l2_first)
        stop = self.early_stopping
        if stop is not None and not isinstance(stop, StoppingRule):
            raise TypeError(f"early_stopping must be a StoppingRule (an EarlyStopping), got "
                            f"{stop!r}")
        if stop is not None and stop.monitor == "val_loss" and self.validation_rows is None:
            raise ValueError("early stopping on 'val_loss' needs validation_rows")

    @property
    def penalised(self) -> bool:
        return bool(self.l1 or self.l2 or self.l2_first)


class Snapshot:
    """A member as it is at the end of one epoch: its test predictions and, on request, weights.

    Handed to ``train_stack``'s ``on_snapshot`` callback. :attr:`predictions` (``uint8``, one
    class per test image, in ``data.test``'s order, on the CPU) come from the epoch's evaluation,
    at no extra cost. :meth:`state_dict` copies the weights out, named as in the model that
    ``build_mlp`` (or ``Experiment.build()``) makes for the member, dropout layers included;
    it must be called during the callback, before training goes on.
    """

    def __init__(self, epoch: int, predictions: torch.Tensor, model: nn.Sequential,
                 names: tuple[str, ...]):
        self.epoch, self.predictions = epoch, predictions
        self._model, self._names = model, names

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The member's weights and buffers now, copied to the CPU, keyed by the user's names."""
        values = self._model.state_dict().values()
        return {name: v.detach().to("cpu", copy=True)
                for name, v in zip(self._names, values, strict=True)}


@functools.lru_cache(maxsize=64)
def user_names(shape: Shape, dropout: float) -> tuple[str, ...]:
    """The state-dict keys of ``build_mlp`` for this shape and dropout (draws no randomness)."""
    with torch.device("meta"):
        model = build_mlp(shape.n_linear, shape.hidden, shape.batch_norm, dropout)
    return tuple(model.state_dict())


@dataclass
class Trained:
    """What the engine hands back for one member: its history and its model, final weights."""

    member: Member
    history: History
    model: nn.Sequential


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image cross-entropy ``(K, B)`` of logits ``(K, B, 10)``, each row on its own.

    Computed on a copy laid out ``(K, 10, B)``: PyTorch's CPU kernels reduce over 10 classes
    along the last dimension 5 to 7 times slower than across it (``F.cross_entropy`` took a
    third of an evaluation).
    """
    by_class = logits.transpose(1, 2).contiguous()
    shifted = by_class - by_class.amax(1, keepdim=True)
    picked = shifted.gather(1, labels.unsqueeze(1)).squeeze(1)
    return shifted.exp().sum(1).log() - picked


class Stack:
    """K models of one shape as stacked tensors: forward pass, evaluation, SGD step."""

    def __init__(self, shape: Shape, members: list[Member], device: torch.device):
        self.shape, self.members, self.device = shape, list(members), device
        self.models, generators = [], []
        for m in members:
            torch.manual_seed(m.seed)  # initialisation, as build_mlp after manual_seed(seed)
            self.models.append(build_mlp(shape.n_linear, shape.hidden, shape.batch_norm))
            dropout_seed = int(torch.randint(2**62, ()))  # drawn right after, from the seed
            generators.append(np.random.Generator(np.random.PCG64(dropout_seed)))
        self.dropout_rngs = generators
        self.start_epoch([])
        # stacked (K, ...) tensors, keyed by the models' own names ("1.weight", ...); a linear
        # layer's weight as nn.Linear keeps it, (K, out, in). Every product is a batched one,
        # each model's own (see the module docstring).
        params, buffers = stack_module_state(self.models)
        self.params = {k: v.detach().to(device) for k, v in params.items()}
        self.buffers = {k: v.to(device) for k, v in buffers.items()}
        self.linear = [i for i, mod in enumerate(self.models[0]) if isinstance(mod, nn.Linear)]
        self.norms = [i for i, mod in enumerate(self.models[0]) if isinstance(mod, nn.BatchNorm1d)]
        self.first = f"{self.linear[0]}.weight"
        self._hyper()

    def _per_model(self, values: torch.Tensor, name: str) -> torch.Tensor:
        """``values`` (K, 1, 1) shaped to broadcast over the stacked tensor ``name``."""
        return values.view(-1, *[1] * (self.params[name].dim() - 1))

    def _hyper(self) -> None:
        """For the current members: hyperparameters as (K, 1, 1) tensors, groups, buffers."""
        def column(name):
            values = [float(getattr(m, name)) for m in self.members]
            return torch.tensor(values, device=self.device).view(-1, 1, 1)

        self.lr, self.l1, self.l2, self.l2_first = (column(n) for n in ("lr", "l1", "l2",
                                                                         "l2_first"))
        self.minus_lr = -self.lr
        self._penalty = self._penalty_factors() if any(m.penalised for m in self.members) else {}
        self.images = torch.empty(0, device=self.device)  # the batch buffer of gather()
        self.keep_p = 1.0 - column("dropout")
        self.any_dropout = any(m.dropout > 0 for m in self.members)
        # runs of consecutive models that see the same batches: same seed, same training rows
        self.groups, start = [], 0
        for k in range(1, len(self.members) + 1):
            if k == len(self.members) or not _same_batches(self.members[start], self.members[k]):
                self.groups.append((start, k))
                start = k
        self.group_of = torch.tensor([n for n, (a, b) in enumerate(self.groups)
                                      for _ in range(a, b)], device=self.device)

    def __len__(self) -> int:
        return len(self.members)

    def _penalty_factors(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Per weight tensor: the penalty's step as factors, ``w * decay + sign(w) * shrink``
        (``decay = 1 - 2 lr l2``, ``shrink = -lr l1``), and a buffer for ``sign(w)``.

        The factors are laid out in full along the weight's last dimension (one number per
        input, ``(K, 1, in)``, not one per model): the elementwise kernels then run vectorised,
        4 to 5 times faster on the first layer than with a factor per model.
        """
        factors = {}
        for n, i in enumerate(self.linear):
            name = f"{i}.weight"
            w = self.params[name]
            l2 = self.l2 + self.l2_first if n == 0 else self.l2
            shape = (w.shape[0], 1, w.shape[2])
            decay = self._per_model(1 + 2 * l2 * self.minus_lr, name).expand(shape).contiguous()
            shrink = self._per_model(self.l1 * self.minus_lr, name).expand(shape).contiguous()
            sign = torch.empty_like(w) if bool((self.l1 > 0).any()) else None
            factors[name] = (decay, shrink, sign)
        return factors

    def forward(self, x: torch.Tensor, training: bool, tape: list | None = None) -> torch.Tensor:
        """Logits ``(K, B, 10)``, each model on its own slice, of one batch of flat images per
        group of models alike (``(G, B, 784)``, from :meth:`gather`) or of images all share
        (``(B, 784)``). With a ``tape`` (a list), what :meth:`loss_and_gradients` needs is
        recorded on it.
        """
        for n, i in enumerate(self.linear):
            w, b = self.params[f"{i}.weight"], self.params[f"{i}.bias"]
            layer = {"input": x}
            if tape is not None:
                tape.append(layer)
            if n == 0:
                x = layer["input"] = self._each_models(x)
                # (K, out, 784) @ (K, 784, B): 2 to 3 times faster than x @ W.T for 10 outputs
                x = torch.baddbmm(b.unsqueeze(2), w, x.transpose(1, 2)).transpose(1, 2)
                x = x.contiguous()  # (K, B, out), as every other layer's output
            else:
                x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if n == len(self.linear) - 1:
                return x
            x = layer["relu"] = x.relu_()  # the backward pass needs only the output
            if self.shape.batch_norm:
                x = self._batch_norm(x, i + 2, training, layer)
            if training and self.any_dropout:
                layer["mask"] = self._dropout_mask(x, n)
                x = x * layer["mask"]
        raise AssertionError("unreachable")

    def gather(self, images: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Each group's images ``(G, B, 784)``: the rows (K, B) of its first model, written
        into a buffer kept from step to step (a fresh one each step costs more)."""
        rows = rows[[a for a, _ in self.groups]]
        size = rows.numel() * images.shape[1]
        if self.images.numel() < size:
            self.images = torch.empty(size, device=images.device)
        out = self.images[:size].view(-1, images.shape[1])
        torch.index_select(images, 0, rows.flatten(), out=out)
        return out.view(*rows.shape, -1)

    def _each_models(self, x: torch.Tensor) -> torch.Tensor:
        """Each model's images ``(K, B, 784)`` from one batch per group ``(G, B, 784)`` or one
        batch all share ``(B, 784)``: a view where no copy is needed."""
        if x.dim() == 2:
            return x.expand(len(self), *x.shape)
        if len(self.groups) == len(self):
            return x
        if len(self.groups) == 1:
            return x.expand(len(self), *x.shape[1:])
        return x.index_select(0, self.group_of)

    def _batch_norm(self, x: torch.Tensor, i: int, training: bool, layer: dict) -> torch.Tensor:
        """``nn.BatchNorm1d`` per model: statistics over the model's own batch, dim 1."""
        mean_, var_ = self.buffers[f"{i}.running_mean"], self.buffers[f"{i}.running_var"]
        gamma = self.params[f"{i}.weight"].unsqueeze(1)
        beta = self.params[f"{i}.bias"].unsqueeze(1)
        if not training:
            scale = gamma * torch.rsqrt(var_.unsqueeze(1) + BN_EPS)
            return (x - mean_.unsqueeze(1)) * scale + beta
        mean = x.mean(1, keepdim=True)
        centred = x - mean
        var = centred.square().mean(1, keepdim=True)  # cheaper than x.var, which centres again
        b = x.shape[1]
        mean_.mul_(1 - BN_MOMENTUM).add_(mean.squeeze(1), alpha=BN_MOMENTUM)
        var_.mul_(1 - BN_MOMENTUM).add_(var.squeeze(1) * (b / max(b - 1, 1)), alpha=BN_MOMENTUM)
        layer["bn"], layer["rstd"] = i, torch.rsqrt(var + BN_EPS)
        layer["xhat"] = centred * layer["rstd"]
        return layer["xhat"] * gamma + beta

    def start_epoch(self, batch_sizes: list[int]) -> None:
        """Announce the sizes of the epoch's batches, in order, so that the dropout masks of
        many steps are drawn at once (see :meth:`_dropout_mask`)."""
        self._coming = list(reversed(batch_sizes))  # the next step's size last
        self._drawn: list[torch.Tensor] = []  # masks drawn ahead, one (layers, K, B, w) a step

    def _dropout_mask(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Inverted dropout's ``mask / (1 - p)`` for hidden ``layer`` of this step: a model
        keeps a unit where a uniform draw from its own generator falls below ``1 - p``.

        NumPy's PCG64, not ``torch.bernoulli_``: it is integer arithmetic, the same masks on
        every machine, and cheaper at these sizes. The masks of up to :data:`MASK_CHUNK` bytes
        of steps, up to the epoch's last batch, are drawn at once (one call per model, in the
        order step by step, layer by layer, as if drawn one at a time: the same numbers), which
        costs a fraction of drawing each step's.
        """
        if layer == 0:
            if not self._drawn:
                self._draw_masks(x.shape)
            self._step_masks = self._drawn.pop()
        return self._step_masks[layer]

    def _draw_masks(self, shape: torch.Size) -> None:
        """Draw the masks of the coming steps of batch size ``shape[1]`` (one step if the
        epoch's sizes were not announced)."""
        k, b, width = shape
        layers = len(self.linear) - 1
        steps = 1
        coming = self._coming
        if coming:
            if coming[-1] != b:
                raise RuntimeError(f"a batch of {b} where {coming[-1]} was announced")
            most = max(1, MASK_CHUNK // (layers * k * b * width * 4))
            while steps < min(len(coming), most) and coming[-1 - steps] == b:
                steps += 1
            del coming[-steps:]
        draws = np.zeros((steps, layers, k, b, width), np.float32)  # p = 0: nothing drawn
        for j, (m, rng) in enumerate(zip(self.members, self.dropout_rngs, strict=True)):
            if m.dropout > 0:
                draws[:, :, j] = rng.random((steps, layers, b, width), dtype=np.float32)
        keep = self.keep_p  # in place on the draws: 1.0 where kept, then / keep (5x faster)
        masks = torch.from_numpy(draws).to(self.device).lt_(keep).div_(keep)
        self._drawn = list(reversed(masks.unbind(0)))

    def loss_and_gradients(self, x: torch.Tensor, labels: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Each model's mean cross-entropy ``(K,)``, its logits, and its loss's gradients.

        The backward pass is written out (the textbook one for linear, ReLU, batch norm and
        dropout) because autograd's bookkeeping took half of each step at these sizes; a test
        checks it against autograd. The first layer's weight gradient, ``x.T @ g`` and the
        biggest tensor of the step, is handed back as its two factors ``(x, g)``:
        :meth:`sgd_step` folds the product into the update (:meth:`first_layer_gradient`
        forms it).
        """
        tape: list[dict] = []
        logits = self.forward(x, training=True, tape=tape)
        # softmax and its log, written out: torch.log_softmax over 10 classes, then exp, took
        # 2 to 3 times as long at these sizes
        shifted = logits - logits.amax(2, keepdim=True)
        exp = shifted.exp()
        total = exp.sum(2, keepdim=True)
        log_p = shifted - total.log()
        picked = labels.unsqueeze(2)
        losses = -log_p.gather(2, picked).squeeze(2).mean(1)
        g = exp.div_(total).scatter_add_(2, picked, torch.full_like(picked, -1,
                                                                    dtype=log_p.dtype))
        g = g / labels.shape[1]  # d(mean over the batch) / d(logits): (softmax - one-hot) / B
        grads: dict = {}
        for n in reversed(range(len(self.linear))):
            i, layer = self.linear[n], tape[n]
            grads[f"{i}.bias"] = g.sum(1)
            if n == 0:
                grads[self.first] = (layer["input"], g)  # g.T @ x, formed in sgd_step
                break
            grads[f"{i}.weight"] = torch.bmm(g.transpose(1, 2), layer["input"])
            g = torch.bmm(g, self.params[f"{i}.weight"])  # to the block below
            below = tape[n - 1]
            if "mask" in below:
                g = g * below["mask"]
            if "bn" in below:
                j, xhat = below["bn"], below["xhat"]
                grads[f"{j}.weight"], grads[f"{j}.bias"] = (g * xhat).sum(1), g.sum(1)
                g = g * self.params[f"{j}.weight"].unsqueeze(1)
                g = below["rstd"] * (g - g.mean(1, keepdim=True)
                                     - xhat * (g * xhat).mean(1, keepdim=True))
            g = torch.ops.aten.threshold_backward(g, below["relu"], 0.0)  # g where ReLU > 0
        return losses, logits, grads

    def first_layer_gradient(self, factors: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The first layer's weight gradient ``g.T @ x`` from its factors, ``(K, out, 784)``
        (the training loop never forms it; the tests do)."""
        x, g = factors
        return torch.bmm(g.transpose(1, 2), x)

    def sgd_step(self, grads: dict) -> None:
        """Plain SGD, ``w -= lr * (grad + penalty grad)``, each model with its own lr.

        The penalty's gradient, ``l1 sign(w) + 2 l2 w``, is taken as its own step first,
        ``w * (1 - 2 lr l2) - lr l1 sign(w)`` in two elementwise passes (see
        :meth:`_penalty_factors`); a model without a penalty multiplies by one and adds zero.
        Then the data's step: the first layer's weights take ``(g * -lr).T @ x`` in one
        batched ``baddbmm_``, written in place (no gradient tensor, no second pass over the
        weights); the rest ``grad * -lr`` in one kernel.
        """
        for name, (decay, shrink, sign) in self._penalty.items():  # both from w before the step
            w = self.params[name]
            if sign is None:  # no L1 in the stack
                w.mul_(decay)
            else:
                _sign(w, out=sign)
                w.mul_(decay).addcmul_(sign, shrink)
        x, g = grads[self.first]
        self.params[self.first].baddbmm_((g * self.minus_lr).transpose(1, 2), x)
        # the rest: w + grad * (-lr), one kernel whatever the stack-mates' learning rates
        rest = [name for name in self.params if name != self.first]
        torch._foreach_addcmul_([self.params[n] for n in rest], [grads[n] for n in rest],
                                [self._per_model(self.minus_lr, n) for n in rest])

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor,
                 rows: torch.Tensor | None, predictions: bool = False) -> list[dict]:
        """Loss and accuracy of every model: on shared ``images`` or its own ``rows`` (K, n).

        With ``predictions``, each model's predicted classes too (``uint8`` on the CPU).
        """
        n = labels.shape[0] if rows is None else rows.shape[1]
        k = len(self)
        loss, hits, guesses = torch.zeros(k, device=self.device), [], []
        for begin in range(0, n, EVAL_CHUNK):
            if rows is None:
                x = images[begin:begin + EVAL_CHUNK]
                y = labels[begin:begin + EVAL_CHUNK].expand(k, -1)
            else:
                chunk = rows[:, begin:begin + EVAL_CHUNK]
                x = self.gather(images, chunk)
                y = labels.index_select(0, chunk.flatten()).view(chunk.shape)
            logits = self.forward(x, training=False)
            loss += _cross_entropy(logits, y).sum(1)
            guesses.append(logits.argmax(2))
            hits.append(guesses[-1] == y)
        if predictions:
            guessed = torch.cat(guesses, 1).to("cpu", torch.uint8)
        hit = torch.cat(hits, 1).double()  # (K, n)
        whole = n // STUDY_EVAL_BATCH * STUDY_EVAL_BATCH  # the study's per-batch average
        per_batch = [hit[:, :whole].view(k, -1, STUDY_EVAL_BATCH).mean(2)]
        if whole < n:
            per_batch.append(hit[:, whole:].mean(1, keepdim=True))
        study = torch.cat(per_batch, 1).mean(1).tolist()
        correct, loss = hit.sum(1).tolist(), loss.tolist()
        out = [{"loss": loss[j] / n, "acc": int(correct[j]) / n, "acc_study": study[j]}
               for j in range(k)]
        if predictions:
            for j, row in enumerate(out):
                row["predictions"] = guessed[j]
        return out

    @torch.no_grad()
    def write_back(self, steps: int) -> None:
        """Copy each model's slice of the stacked tensors into its own ``nn.Sequential``."""
        for j, model in enumerate(self.models):
            state = {k: v[j] for k, v in (self.params | self.buffers).items()}
            for i in self.norms:
                state[f"{i}.num_batches_tracked"] = torch.tensor(steps)
            model.load_state_dict(state)

    def keep(self, rows: list[int]) -> None:
        """Keep only the models at ``rows`` (the others leave, their own models written)."""
        index = torch.tensor(rows, device=self.device)
        self.members = [self.members[r] for r in rows]
        self.models = [self.models[r] for r in rows]
        self.dropout_rngs = [self.dropout_rngs[r] for r in rows]
        self.start_epoch([])  # masks drawn ahead were the leavers' too
        self.params = {k: v.index_select(0, index) for k, v in self.params.items()}
        self.buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}
        self._hyper()


def _sign(w: torch.Tensor, out: torch.Tensor) -> None:
    """``torch.sign(w, out=out)``, exactly. PyTorch's plain CPU kernel for ``sign`` (portable
    mode's, :mod:`fmnist_helpers.kernels`) is 70 times slower than its AVX2 one; there, scaling
    by 2**254 (any nonzero float32 to at least 2**105, or infinity) and clamping to [-1, 1]
    gives the same -1, 0 and 1 six times faster."""
    if w.device.type != "cpu" or torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        torch.sign(w, out=out)
        return
    torch.mul(w, 2.0 ** 127, out=out).mul_(2.0 ** 127).clamp_(-1, 1).add_(0.0)  # -0.0 to 0.0


def train_sample(rows: torch.Tensor, size: int | None = None) -> torch.Tensor | None:
    """``size`` (default :data:`TRAIN_SAMPLE`) of the training ``rows``, evenly spaced by row
    number, or None if there are no more rows than that. Draws no randomness and depends on
    the rows alone, so a run's numbers stay the same alone or in any stack."""
    size = TRAIN_SAMPLE if size is None else size
    if len(rows) <= size:
        return None
    ordered = rows.sort().values
    return ordered[torch.arange(size, device=rows.device) * len(rows) // size]


def _same_batches(a: Member, b: Member) -> bool:
    """Whether two members draw the same batches: the same seed and the same training rows."""
    if a.seed != b.seed or (a.train_rows is None) != (b.train_rows is None):
        return False
    return a.train_rows is None or torch.equal(a.train_rows, b.train_rows)


def _user_model(shape: Shape, member: Member, trained: nn.Sequential) -> nn.Sequential:
    """The member's model as ``build_mlp`` makes it (with its dropout), holding its weights."""
    model = build_mlp(shape.n_linear, shape.hidden, shape.batch_norm, member.dropout)
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), trained.parameters(), strict=True):
            ours.copy_(theirs)
        for ours, theirs in zip(model.buffers(), trained.buffers(), strict=True):
            ours.copy_(theirs)
    return model.eval()


@contextmanager
def _one_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, compute with one thread, then restore the count (see the module docstring)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_stack(
    shape: Shape,
    members: list[Member],
    data: FashionMNIST,
    *,
    device: torch.device | str | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[int, History], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_snapshot: Callable[[int, History, Snapshot], None] | None = None,
) -> list[Trained]:
    """Train every member on ``data.train`` in one stack; evaluate each epoch on ``data.test``.

    All members must train on the same number of rows (their batches line up). Callbacks:
    ``on_batch(step, steps_per_epoch, models_training)`` after each batch; ``on_epoch(j,
    history)`` after member ``j`` finishes an epoch; ``should_stop()`` between batches ends the
    whole run (histories marked ``interrupted``, the weights kept as they are);
    ``on_snapshot(j, history, snapshot)`` just before ``on_epoch``, with member ``j``'s test
    predictions and weights at that epoch (a :class:`Snapshot`); asking for it changes no number.
    """
    if not members:
        raise ValueError("train_stack needs at least one member")
    device = pick_device(device)
    with torch.no_grad(), _one_thread(device):
        return _train(shape, members, data, device, on_batch, on_epoch, should_stop, on_snapshot)


def _train(shape: Shape, members: list[Member], data: FashionMNIST, device: torch.device,
           on_batch, on_epoch, should_stop, on_snapshot) -> list[Trained]:
    """:func:`train_stack`'s loop."""
    sizes = {len(data.train) if m.train_rows is None else len(m.train_rows) for m in members}
    if len(sizes) != 1:
        raise ValueError(f"members of one stack must train on as many rows; got sizes {sizes}")
    n = sizes.pop()
    steps = math.ceil(n / BATCH_SIZE)
    images, labels = data.train.images.flatten(1).to(device), data.train.labels.to(device)
    test_images, test_labels = data.test.images.flatten(1).to(device), data.test.labels.to(device)
    everything = torch.arange(len(data.train), device=device)
    rows = [everything if m.train_rows is None else m.train_rows.to(device) for m in members]
    val_rows = [None if m.validation_rows is None else m.validation_rows.to(device)
                for m in members]
    shuffles = [torch.Generator().manual_seed(m.seed) for m in members]
    shared = all(m.train_rows is None for m in members)  # evaluate on one training set
    samples = [train_sample(r) for r in rows]  # all None or none: the members' n is one
    histories = [History() for _ in members]
    live = sorted(range(len(members)), key=lambda j: members[j].seed)  # stack position -> member
    stack = Stack(shape, [members[j] for j in live], device)  # same seeds side by side
    models = [stack.models[live.index(j)] for j in range(len(members))]  # written each epoch

    for epoch in range(1, max(m.epochs for m in members) + 1):
        # each model's order for the epoch: a fresh permutation of its own rows
        orders = torch.stack([rows[j][torch.randperm(n, generator=shuffles[j]).to(device)]
                              for j in live])
        stack.start_epoch([min(BATCH_SIZE, n - begin) for begin in range(0, n, BATCH_SIZE)])
        loss_sum = torch.zeros(len(live), device=device)
        acc_sum = torch.zeros(len(live), device=device)
        for step, begin in enumerate(range(0, n, BATCH_SIZE), 1):
            batch = orders[:, begin:begin + BATCH_SIZE]  # (K, B): each model's own examples
            y = labels.index_select(0, batch.flatten()).view(batch.shape)
            x = stack.gather(images, batch)
            # a model whose loss is NaN keeps NaN in its own slice; it leaves at the epoch's end
            losses, logits, grads = stack.loss_and_gradients(x, y)
            stack.sgd_step(grads)
            loss_sum.add_(losses, alpha=batch.shape[1])
            acc_sum.add_((logits.argmax(2) == y).sum(1), alpha=1 / batch.shape[1])
            if on_batch is not None:
                on_batch(step, steps, len(live))
            if should_stop is not None and should_stop():
                for j in live:
                    histories[j].interrupted = True
                stack.write_back((epoch - 1) * steps + step)
                return _finish(shape, members, histories, models)

        stack.write_back(epoch * steps)
        tests = stack.evaluate(test_images, test_labels, None, on_snapshot is not None)
        vals = None
        if all(val_rows[j] is not None for j in live):
            vals = stack.evaluate(images, labels, torch.stack([val_rows[j] for j in live]))
        ending = {}  # pos -> (row, the member's last epoch, a run on it ends: exact train_acc)
        for pos, j in enumerate(live):
            history, member = histories[j], members[j]
            if not math.isfinite(float(loss_sum[pos])):
                history.diverged = (
                    f"the training loss became {float(loss_sum[pos])} in epoch {epoch}: "
                    f"training diverged. Lower the learning rate (lr={member.lr}) or the penalty "
                    f"strengths (l1={member.l1}, l2={member.l2}, l2_first={member.l2_first}).")
                continue
            row = {"epoch": epoch, "train_loss": float(loss_sum[pos]) / n,
                   "train_acc_running": float(acc_sum[pos]) / steps, "train_acc": None,
                   "test_loss": tests[pos]["loss"], "test_acc": tests[pos]["acc"],
                   "test_acc_study": tests[pos]["acc_study"]}
            if vals is not None:
                row |= {"val_loss": vals[pos]["loss"], "val_acc": vals[pos]["acc"]}
            rule = member.early_stopping
            if rule is not None:
                history.stopped_early = rule.step(row[rule.monitor], epoch)
                history.best_epoch = rule.best_epoch
            last = history.stopped_early or epoch >= member.epochs
            ending[pos] = (row, last, last or _a_run_ends(rule, epoch))
        _train_accuracy(stack, ending, images, labels, rows, samples, live, shared)
        staying = []
        for pos, (row, last, _) in ending.items():
            j = live[pos]
            history = histories[j]
            history.rows.append(row)
            if on_snapshot is not None:
                names = user_names(shape, members[j].dropout)
                on_snapshot(j, history, Snapshot(epoch, tests[pos]["predictions"], models[j],
                                                 names))
            if on_epoch is not None:
                on_epoch(j, history)
            if not last:
                staying.append(pos)
        if not staying:
            break
        if len(staying) < len(live):  # the others leave, their models written
            stack.keep(staying)
            live = [live[pos] for pos in staying]
    return _finish(shape, members, histories, models)


def _a_run_ends(rule: StoppingRule | None, epoch: int) -> bool:
    """Whether a run ends at ``epoch`` on a member that trains on: the planner's trajectories
    (several runs read from one training) say so; an :class:`EarlyStopping` never does."""
    return rule is not None and rule.run_ends_at(epoch)


def _train_accuracy(stack: Stack, ending: dict, images: torch.Tensor, labels: torch.Tensor,
                    rows: list[torch.Tensor], samples: list[torch.Tensor | None],
                    live: list[int], shared: bool) -> None:
    """Fill in each row's ``train_acc``: on all the member's training rows where a run ends
    (``ending[pos] = (row, last, exact)``), on its sample before; where a run ends but the
    member trains on, both (the sample's as ``train_acc_sample``, for the longer runs)."""
    def accuracy(on: list[torch.Tensor | None]) -> list[float]:
        if not shared:
            return [r["acc"] for r in stack.evaluate(images, labels, torch.stack(on))]
        chosen = on[0]  # the same rows for every member: one product per chunk for the stack
        if chosen is None:
            return [r["acc"] for r in stack.evaluate(images, labels, None)]
        return [r["acc"] for r in stack.evaluate(images[chosen], labels[chosen], None)]

    if not ending:  # every member diverged
        return
    sampled = samples[live[0]] is not None
    everything = sample = None
    if not sampled or any(exact for _, _, exact in ending.values()):
        everything = accuracy([None if shared else rows[j] for j in live])
    if sampled and not all(last for _, last, _ in ending.values()):
        sample = accuracy([samples[j] for j in live])
    for pos, (row, last, exact) in ending.items():
        if sample is None or exact:
            row["train_acc"] = everything[pos]
        if sample is not None:
            if not exact:
                row["train_acc"] = sample[pos]
            elif not last:
                row["train_acc_sample"] = sample[pos]


def _finish(shape: Shape, members: list[Member], histories: list[History],
            models: list[nn.Sequential]) -> list[Trained]:
    return [Trained(m, h, _user_model(shape, m, model))
            for m, h, model in zip(members, histories, models, strict=True)]


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Loss and exact accuracy of one ``nn.Module`` in eval mode (the playground's Stop)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(images[i:i + EVAL_CHUNK]) for i in range(0, len(labels),
                                                                          EVAL_CHUNK)])
    model.train(was_training)
    return {"loss": float(F.cross_entropy(logits, labels)),
            "acc": int((logits.argmax(1) == labels).sum()) / len(labels)}
