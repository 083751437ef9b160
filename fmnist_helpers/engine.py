"""The one training loop: a stack of K models of one shape, trained side by side in one pass.

The study's recipe by default: cross-entropy, ReLU, plain SGD, batches of 32 drawn in a fresh
random order each epoch, optional L1/L2 penalties and early stopping. Notebook 01 shows it as a
plain 15-line PyTorch loop; this module runs the same recipe for many models at once (the
stack's arithmetic, forward, backward and SGD step, is in :mod:`fmnist_helpers.stack`). A
:class:`Shape` may choose another activation (tanh, sigmoid, LeakyReLU), optimizer (SGD with
momentum 0.9, Adam) or batch size (8 to 512), and a member may train on a subset of the rows.

The K models share their layer sizes, batch-norm placement and recipe (a :class:`Shape`); each one
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

**Two paths to the gradients.** ``vmap`` cannot give each model its own dropout generator or
update batch-norm statistics in place, hence the stacking by hand. The general path
(:mod:`fmnist_helpers.optimizers`: autograd over the same forward pass, any activation,
optimizer and batch size) and the written-out one (ReLU and plain SGD only) both keep a model's
numbers the same alone or in any stack, and agree within 1e-4 in loss on the study's recipe.
The study's runs take the written-out one, faster: one epoch of 5 seeds of the shallow network,
2.85 s against 4.42 s through autograd, 1.55x (``bench --only paths``, median of 3; AMD EPYC,
Zen 3, AVX2, 2 cores, nothing else running, 2026-11-30).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from .constraints import check, check_all
from .data import IMAGE_SIZE, N_CLASSES, FashionMNIST
from .history import History
from .models import build_mlp, check_architecture, check_recipe, logits_in_chunks
from .settings import pick_device
from .stack import EVAL_CHUNK, Stack

BATCH_SIZE = 32  # the study's
PATHS = ("auto", "written", "autograd")  # train_stack's gradients: see Shape.written_path
TRAIN_SAMPLE = 10_000  # training rows evaluated after every epoch but a run's last (see History)


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
    """What the models of a stack share: linear layers (classifier included), width, batch
    norm, and the recipe's activation, optimizer and batch size (batches line up in a stack)."""

    n_linear: int = 3
    hidden: int = 10
    batch_norm: bool = False
    activation: str = "relu"
    optimizer: str = "sgd"
    batch_size: int = BATCH_SIZE

    def __post_init__(self) -> None:
        check_architecture(self.n_linear, self.hidden, self.batch_norm, 0.0, self.activation)
        check_all(optimizer=self.optimizer, batch_size=self.batch_size)

    @property
    def written_path(self) -> bool:
        """Whether the written-out backward pass covers this recipe (ReLU, plain SGD)."""
        return self.activation == "relu" and self.optimizer == "sgd"

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
        model = build_mlp(shape.n_linear, shape.hidden, shape.batch_norm, dropout,
                          shape.activation)
    return tuple(model.state_dict())


@dataclass
class Trained:
    """What the engine hands back for one member: its history and its model, final weights."""

    member: Member
    history: History
    model: nn.Sequential


def train_sample(rows: torch.Tensor, size: int | None = None) -> torch.Tensor | None:
    """``size`` (default :data:`TRAIN_SAMPLE`) of the training ``rows``, evenly spaced by row
    number, or None if there are no more rows than that. Draws no randomness and depends on
    the rows alone, so a run's numbers stay the same alone or in any stack."""
    size = TRAIN_SAMPLE if size is None else size
    if len(rows) <= size:
        return None
    ordered = rows.sort().values
    return ordered[torch.arange(size, device=rows.device) * len(rows) // size]


def _user_model(shape: Shape, member: Member, trained: nn.Sequential) -> nn.Sequential:
    """The member's model as ``build_mlp`` makes it (with its dropout), holding its weights."""
    model = build_mlp(shape.n_linear, shape.hidden, shape.batch_norm, member.dropout,
                      shape.activation)
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
    gradients: str = "auto",
) -> list[Trained]:
    """Train every member on ``data.train`` in one stack; evaluate each epoch on ``data.test``.

    All members must train on the same number of rows (their batches line up). Callbacks:
    ``on_batch(step, steps_per_epoch, models_training)`` after each batch; ``on_epoch(j,
    history)`` after member ``j`` finishes an epoch; ``should_stop()`` between batches ends the
    whole run (histories marked ``interrupted``, the weights kept as they are);
    ``on_snapshot(j, history, snapshot)`` just before ``on_epoch``, with member ``j``'s test
    predictions and weights at that epoch (a :class:`Snapshot`); asking for it changes no number.

    ``gradients``: "written" (the written-out backward pass and SGD step, the study's recipe
    only), "autograd" (the general path, any recipe) or "auto" (the first where it applies).
    """
    if not members:
        raise ValueError("train_stack needs at least one member")
    if gradients not in PATHS:
        raise ValueError(f"gradients must be 'auto', 'written' or 'autograd', got {gradients!r}")
    written = shape.written_path if gradients == "auto" else gradients == "written"
    device = pick_device(device)
    with torch.no_grad(), _one_thread(device):
        return _train(shape, members, data, device, on_batch, on_epoch, should_stop, on_snapshot,
                      written)


def _train(shape: Shape, members: list[Member], data: FashionMNIST, device: torch.device,
           on_batch, on_epoch, should_stop, on_snapshot, written: bool) -> list[Trained]:
    """:func:`train_stack`'s loop."""
    sizes = {len(data.train) if m.train_rows is None else len(m.train_rows) for m in members}
    if len(sizes) != 1:
        raise ValueError(f"members of one stack must train on as many rows; got sizes {sizes}")
    n = sizes.pop()
    size = shape.batch_size
    steps = math.ceil(n / size)
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
    stack = Stack(shape, [members[j] for j in live], device, written)  # same seeds side by side
    models = [stack.models[live.index(j)] for j in range(len(members))]  # written each epoch

    for epoch in range(1, max(m.epochs for m in members) + 1):
        # each model's order for the epoch: a fresh permutation of its own rows
        orders = torch.stack([rows[j][torch.randperm(n, generator=shuffles[j]).to(device)]
                              for j in live])
        stack.start_epoch([min(size, n - begin) for begin in range(0, n, size)])
        loss_sum = torch.zeros(len(live), device=device)
        acc_sum = torch.zeros(len(live), device=device)
        for step, begin in enumerate(range(0, n, size), 1):
            batch = orders[:, begin:begin + size]  # (K, B): each model's own examples
            y = labels.index_select(0, batch.flatten()).view(batch.shape)
            x = stack.gather(images, batch)
            # a model whose loss is NaN keeps NaN in its own slice; it leaves at the epoch's end
            losses, logits = stack.step(x, y)
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
    logits = logits_in_chunks(model, images, EVAL_CHUNK)
    return {"loss": float(F.cross_entropy(logits, labels)),
            "acc": int((logits.argmax(1) == labels).sum()) / len(labels)}
