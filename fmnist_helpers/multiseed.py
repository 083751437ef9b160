"""Several seeds of one experiment trained together, as one batch of models.

K seeds of one configuration share each pass over the data: their weights are stacked into
``(K, out, in)`` tensors and every linear layer is one batched matrix product
(``torch.baddbmm``). Nothing else is shared. Each seed keeps its own

* initialisation: ``torch.manual_seed(seed)`` then ``experiment.build()``, as a single run does;
* batch order: ``torch.Generator().manual_seed(seed)`` and one ``randperm`` per epoch, as in
  :func:`fmnist_helpers.data.minibatches`; batch ``t`` of every seed is gathered in one index op;
* dropout masks: a single run draws them from the global generator, which nothing else touches
  during training, so each seed gets a private generator that starts from the global state
  right after its model was built, and draws the same-shaped masks from it with ``bernoulli_``;
* batch-norm statistics: the K seeds' channels sit side by side, ``(batch, K * width)``, in one
  ``F.batch_norm`` call, which normalises (and tracks) each channel on its own;
* loss: the objective is the sum of the seeds' own losses, so each seed's gradient is its own;
* early stopping: a seed that stops leaves the batch; the others go on.

Evaluation after each epoch runs all seeds in one pass on the splits they share (train, test),
and each seed's own model, with :func:`fmnist_helpers.train.evaluate`, on its own ones.

So each seed gets the history that its own run with
:func:`fmnist_helpers.experiments.run_experiment` would, up to floating-point rounding (batched
products add in another order). :func:`run_seeds` reads and writes the same cache as single runs.

One caveat, which holds between any two ways of computing the same run (another BLAS library,
another machine): models with batch norm after ReLU are chaotic in training. A channel almost dead
in a batch has a variance near zero, and dividing by ``sqrt(var + eps)`` magnifies rounding up
to ``1/sqrt(eps) = 316`` times, so after a few dozen steps such runs drift apart and end at
different, equally valid, numbers (a one-ulp change of the first weights moves the test
accuracy by 0.1 to 0.3 after two quick epochs). Models without batch norm stay within rounding
of their separate runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .data import N_CLASSES, FashionMNIST, Split, minibatches, quick_mode, stratified_indices
from .experiments import (
    Experiment,
    Result,
    _write_atomic,
    cache_path,
    effective_epochs,
    get_data,
    get_experiment,
    load_cached,
    split_for,
    versions,
)
from .models import Dropout, count_parameters
from .train import (
    EVAL_BATCH,
    STUDY_EVAL_BATCH,
    EarlyStopping,
    History,
    TrainingDiverged,
    evaluate,
    pick_device,
    progress_enabled,
)

BATCH_SIZE = 32


def _global_rng_state(device: torch.device) -> torch.Tensor:
    """The state of the global generator that ``models.Dropout`` draws from on ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type == "mps":
        return torch.mps.get_rng_state()
    return torch.get_rng_state()


@dataclass
class _Layer:
    """One layer of the stacked models: its kind, its place in the ``nn.Sequential``, tensors."""

    kind: str  # "flatten", "linear", "relu", "batch_norm" or "dropout"
    index: int
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # stacked (K, ...)
    p: float = 0.0  # dropout
    momentum: float = 0.1  # batch norm
    eps: float = 1e-5  # batch norm


class _StackedLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` for K models at once: ``(K, B, in)`` to ``(K, B, out)``.

    Autograd's own backward of ``baddbmm`` would form the weight gradient as ``x.T @ grad``,
    transposed; this one forms ``grad.T @ x`` as ``nn.Linear``'s backward does, which is
    several times faster for these shapes on the CPU.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.transpose(1, 2), x), grad.sum(1)


PARAMETERS = ("weight", "bias")  # trained; batch norm's running_mean/var are buffers


class SeedStack:
    """K models of one architecture as stacked tensors: a batched forward pass and SGD step.

    ``models`` are the seeds' own ``nn.Sequential`` (freshly built); :meth:`write_back` copies
    the stacked weights into them, so they can be evaluated like any single model.
    """

    def __init__(self, models: list[nn.Sequential], dropout_rngs: list[torch.Generator]):
        self.models, self.dropout_rngs = list(models), list(dropout_rngs)
        self.steps = 0  # SGD steps taken, the same for every seed still in the batch
        self.layers: list[_Layer] = []
        for index, module in enumerate(models[0]):
            if isinstance(module, nn.Linear):
                layer = _Layer("linear", index)
                names = PARAMETERS
            elif isinstance(module, nn.BatchNorm1d):
                layer = _Layer("batch_norm", index, momentum=module.momentum, eps=module.eps)
                names = PARAMETERS + ("running_mean", "running_var")
            elif isinstance(module, (nn.ReLU, nn.Flatten, Dropout)):
                layer = _Layer(type(module).__name__.lower(), index, p=getattr(module, "p", 0.0))
                names = ()
            else:
                raise TypeError(f"cannot stack a {type(module).__name__} layer")
            for name in names:
                stacked = torch.stack([getattr(m[index], name).detach() for m in models])
                layer.tensors[name] = stacked.requires_grad_(name in PARAMETERS)
            self.layers.append(layer)

    def __len__(self) -> int:
        return len(self.models)

    def parameters(self) -> list[torch.Tensor]:
        return [t for layer in self.layers for n, t in layer.tensors.items() if n in PARAMETERS]

    def forward(self, images: torch.Tensor, training: bool = True) -> torch.Tensor:
        """Logits ``(K, B, 10)`` of flattened images.

        In training mode each seed has its own batch, ``(K, B, 784)``; in eval mode (no dropout,
        batch norm on its running statistics) all seeds see the same images, ``(B, 784)``.
        """
        x = images  # already flat: "flatten" layers are skipped
        for layer in self.layers:
            t = layer.tensors
            if layer.kind == "linear" and x.dim() == 2:  # shared input: one product for all
                k, out, _ = t["weight"].shape
                x = F.linear(x, t["weight"].flatten(0, 1), t["bias"].flatten())
                x = x.view(-1, k, out).transpose(0, 1)
            elif layer.kind == "linear":
                x = _StackedLinear.apply(x, t["weight"], t["bias"])
            elif layer.kind == "relu":
                x = torch.relu(x)
            elif layer.kind == "batch_norm":
                x = self._batch_norm(x, layer, training)
            elif layer.kind == "dropout" and training and layer.p > 0:
                # the mask each seed's own Dropout module would draw: same shape, same stream
                shape, like = x.shape[1:], {"dtype": x.dtype, "device": x.device}
                masks = [torch.empty(shape, **like).bernoulli_(1.0 - layer.p, generator=g)
                         for g in self.dropout_rngs]
                x = x * torch.stack(masks) / (1.0 - layer.p)
        return x

    @staticmethod
    def _batch_norm(x: torch.Tensor, layer: _Layer, training: bool) -> torch.Tensor:
        k, b, c = x.shape
        t = layer.tensors
        side_by_side = x.transpose(0, 1).reshape(b, k * c)  # K*c channels, each its own stats
        out = F.batch_norm(
            side_by_side, t["running_mean"].view(-1), t["running_var"].view(-1),
            t["weight"].view(-1), t["bias"].view(-1), training=training,
            momentum=layer.momentum, eps=layer.eps,
        )
        return out.view(b, k, c).transpose(0, 1)

    @torch.no_grad()
    def evaluate(self, split: Split) -> list[dict]:
        """:func:`fmnist_helpers.train.evaluate` of every seed on one split, in one pass."""
        losses, hits = [], []
        for images, labels in minibatches(split, EVAL_BATCH):
            logits = self.forward(images.flatten(1), training=False)  # (K, n, 10)
            per_image = F.cross_entropy(logits.flatten(0, 1), labels.repeat(len(self)),
                                        reduction="none")
            losses.append(per_image.view(len(self), -1).sum(1))
            hits.append(logits.argmax(2) == labels)
        loss = torch.stack(losses, 1).sum(1).tolist()
        hits = torch.cat(hits, 1).double()  # (K, N)
        acc = hits.sum(1).tolist()
        # the study's accuracy: the mean of the accuracies of batches of 32 (the last smaller)
        n, k = len(split), len(self)
        whole = n // STUDY_EVAL_BATCH * STUDY_EVAL_BATCH
        per_batch = [hits[:, :whole].view(k, -1, STUDY_EVAL_BATCH).mean(2)]
        if whole < n:
            per_batch.append(hits[:, whole:].mean(1, keepdim=True))
        study = torch.cat(per_batch, 1).mean(1).tolist()
        return [{"loss": loss[i] / n, "acc": int(acc[i]) / n, "acc_study": study[i]}
                for i in range(k)]

    def penalty(self, l1: float, l2: float, l2_first: float) -> torch.Tensor:
        """Each seed's :func:`fmnist_helpers.models.weight_penalty`, shape ``(K,)``."""
        weights = [layer.tensors["weight"] for layer in self.layers if layer.kind == "linear"]
        total = weights[0].new_zeros(len(self))
        if l1:
            total = total + l1 * sum(w.abs().sum((1, 2)) for w in weights)
        if l2:
            total = total + l2 * sum(w.pow(2).sum((1, 2)) for w in weights)
        if l2_first:
            total = total + l2_first * weights[0].pow(2).sum((1, 2))
        return total

    def sgd_step(self, objective: torch.Tensor, lr: float) -> None:
        """One step of plain SGD (``p -= lr * grad``, as ``torch.optim.SGD`` without momentum)."""
        params = self.parameters()
        grads = torch.autograd.grad(objective, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
        self.steps += 1

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each seed's slice of the stacked tensors into its own model."""
        for k, model in enumerate(self.models):
            for layer in self.layers:
                module = model[layer.index]
                for name, stacked in layer.tensors.items():
                    getattr(module, name).copy_(stacked[k])
                if layer.kind == "batch_norm":
                    module.num_batches_tracked.fill_(self.steps)

    def keep(self, rows: list[int]) -> None:
        """Drop every seed but ``rows`` from the batch (the dropped ones stay as they are)."""
        self.models = [self.models[i] for i in rows]
        self.dropout_rngs = [self.dropout_rngs[i] for i in rows]
        index = torch.tensor(rows, device=self.parameters()[0].device)
        for layer in self.layers:
            for name, stacked in layer.tensors.items():
                kept = stacked.detach().index_select(0, index)
                layer.tensors[name] = kept.requires_grad_(name in PARAMETERS)


@dataclass
class _Seed:
    """What one seed keeps to itself: its model, generators, data and history."""

    seed: int
    model: nn.Sequential
    dropout_rng: torch.Generator
    shuffle: torch.Generator
    rows: torch.Tensor | None  # the rows of data.train it trains on; None: all of them
    validation: Split | None
    stopper: EarlyStopping | None
    history: History = field(default_factory=History)


def _training_rows(
    experiment: Experiment, data: FashionMNIST, seed: int
) -> tuple[torch.Tensor | None, Split | None]:
    """The rows of ``data.train`` a seed trains on, and its validation split (if any).

    A single run trains on ``split_for(...)``'s copy of the kept rows; here the rows are
    recomputed the way :func:`fmnist_helpers.data.validation_split` picks them, so all seeds
    can gather from the one full training set, and checked against that copy.
    """
    part, validation = split_for(experiment, data, seed)
    if validation is None:
        return None, None
    held = stratified_indices(data.train.labels, len(validation) // N_CLASSES, seed)
    keep = torch.ones(len(data.train), dtype=torch.bool)
    keep[held] = False
    rows = torch.nonzero(keep).flatten()
    if not torch.equal(data.train.images[rows], part.train.images):
        raise RuntimeError("multiseed's validation rows are out of step with validation_split")
    return rows, validation


def train_seeds(
    experiment: Experiment,
    seeds: list[int],
    data: FashionMNIST,
    *,
    epochs: int | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    desc: str | None = None,
) -> list[History]:
    """Train ``experiment`` once per seed, all seeds together; return their histories in order.

    Each history is what ``torch.manual_seed(seed)``, ``experiment.build()`` and
    :func:`fmnist_helpers.train.train` (with the experiment's settings, ``seed=seed``, and the
    validation split of :func:`fmnist_helpers.experiments.split_for`) would give, up to
    floating-point rounding. A row's ``seconds`` is the seed's share of the joint epoch (its
    wall time divided by the number of seeds in it). A NaN or infinite loss in any seed raises
    :class:`fmnist_helpers.train.TrainingDiverged` naming that seed.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list without repeats, got {seeds}")
    epochs = experiment.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = pick_device() if device is None else torch.device(device)
    lr, l1, l2, l2_first = experiment.lr, experiment.l1, experiment.l2, experiment.l2_first
    penalised = bool(l1 or l2 or l2_first)

    runs = []
    for seed in seeds:
        rows, validation = _training_rows(experiment, data, seed)
        torch.manual_seed(seed)
        model = experiment.build().to(device)
        dropout_rng = torch.Generator(device=device)
        dropout_rng.set_state(_global_rng_state(device))
        stopper = experiment.early_stopper()
        runs.append(_Seed(
            seed, model, dropout_rng, torch.Generator().manual_seed(seed),
            None if rows is None else rows.to(device),
            None if validation is None else validation.to(device), stopper,
        ))
    train_split, test_split = data.train.to(device), data.test.to(device)
    images = train_split.images.flatten(1)  # (N, 784): every seed gathers its batches here
    n = len(train_split) if runs[0].rows is None else len(runs[0].rows)
    steps = math.ceil(n / BATCH_SIZE)
    stack = SeedStack([r.model for r in runs], [r.dropout_rng for r in runs])
    active = list(runs)

    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        label = desc or f"{experiment.name} (seeds {', '.join(map(str, seeds))})"
        bar = tqdm(total=epochs * steps, desc=label, unit="batch", leave=True)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        # each seed's order for the epoch, as minibatches() draws it, as rows of data.train
        orders = []
        for r in active:
            order = torch.randperm(n, generator=r.shuffle).to(device)
            orders.append(order if r.rows is None else r.rows[order])
        orders = torch.stack(orders)  # (K, n)
        loss_sum = torch.zeros(len(active), device=device)
        batch_acc_sum = torch.zeros(len(active), device=device)
        for step, begin in enumerate(range(0, n, BATCH_SIZE), 1):
            batch = orders[:, begin : begin + BATCH_SIZE]  # (K, B): seed k's own examples
            rows = batch.flatten()  # index_select on flat rows: far faster than images[batch]
            labels = train_split.labels.index_select(0, rows).view(batch.shape)
            logits = stack.forward(images.index_select(0, rows).view(*batch.shape, -1))
            losses = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), reduction="none"
            ).view_as(labels).mean(1)  # each seed's mean loss, (K,)
            if not bool(torch.isfinite(losses).all()):
                if bar is not None:
                    bar.close()
                bad = int(torch.nonzero(~torch.isfinite(losses))[0])
                raise TrainingDiverged(
                    f"seed {active[bad].seed}: the loss became {losses[bad].item()} at epoch "
                    f"{epoch}, batch {step}: training diverged. Lower the learning rate "
                    f"(lr={lr}) or the penalty strengths (l1={l1}, l2={l2}, l2_first={l2_first})."
                )
            objective = losses.sum()
            if penalised:
                objective = objective + stack.penalty(l1, l2, l2_first).sum()
            stack.sgd_step(objective, lr)
            loss_sum += losses.detach() * labels.shape[1]
            batch_acc_sum += (logits.detach().argmax(2) == labels).float().mean(1)
            if bar is not None:
                bar.update(1)

        stack.write_back()  # each seed's model now holds its weights, for its own splits
        shared_train = stack.evaluate(train_split) if active[0].rows is None else None
        tests = stack.evaluate(test_split)
        for k, r in enumerate(active):
            if shared_train is not None:
                train_acc = shared_train[k]["acc"]
            else:
                train_acc = evaluate(r.model, train_split.take(r.rows))["acc"]
            row = {
                "epoch": epoch,
                "train_loss": float(loss_sum[k]) / n,
                "train_acc_running": float(batch_acc_sum[k]) / steps,
                "train_acc": train_acc,
                "test_loss": tests[k]["loss"],
                "test_acc": tests[k]["acc"],
                "test_acc_study": tests[k]["acc_study"],
            }
            if r.validation is not None:
                val = evaluate(r.model, r.validation)
                row |= {"val_loss": val["loss"], "val_acc": val["acc"]}
            r.history.rows.append(row)
            if r.stopper is not None:
                r.history.stopped_early = r.stopper.step(row[r.stopper.monitor], epoch)
                r.history.best_epoch = r.stopper.best_epoch
        share = (time.perf_counter() - start) / len(active)
        for r in active:
            r.history.rows[-1]["seconds"] = share
        if bar is not None:
            bar.set_postfix(epoch=epoch, seeds=len(active))
        going_on = [k for k, r in enumerate(active) if not r.history.stopped_early]
        if len(going_on) < len(active):  # stopped seeds leave the batch, frozen as they are
            active = [active[k] for k in going_on]
            if not active:
                break
            stack.keep(going_on)
    if bar is not None:
        bar.close()
    return [r.history for r in runs]


def run_seeds(
    name: str | Experiment,
    seeds: list[int],
    epochs: int | None = None,
    quick: bool | None = None,
    *,
    cache: bool = True,
    progress: bool | None = None,
    device: str | None = None,
) -> list[Result]:
    """Like :func:`fmnist_helpers.experiments.run_experiment` for several seeds at once.

    Seeds already in the cache are loaded; the missing ones are trained together and each is
    cached where ``run_experiment`` looks for it, so either function finds the other's runs
    (for batch-norm models, see the module's caveat: the numbers depend on which trained it).
    A result's ``seconds`` is its share of the joint training time.
    """
    experiment = get_experiment(name)
    quick = quick_mode() if quick is None else quick
    epochs = effective_epochs(experiment, quick, epochs)
    dev = pick_device(device)
    results: dict[int, Result] = {}
    for seed in seeds:
        path = cache_path(experiment, seed, epochs, quick, dev.type)
        cached = load_cached(path) if cache else None
        if cached is not None:
            results[seed] = cached
    missing = [s for s in dict.fromkeys(seeds) if s not in results]
    if missing:
        start = time.perf_counter()
        histories = train_seeds(experiment, missing, get_data(quick), epochs=epochs,
                                device=dev, progress=progress)
        share = (time.perf_counter() - start) / len(missing)
        n_params = count_parameters(experiment.build())
        for seed, history in zip(missing, histories, strict=True):
            results[seed] = Result(experiment, seed, quick, history, n_params, share, dev.type,
                                   versions())
            if cache:
                _write_atomic(cache_path(experiment, seed, epochs, quick, dev.type),
                              results[seed].to_dict())
    return [results[s] for s in seeds]
