"""Why a network fails: what a run's history says about its collapse, and per-epoch diagnostics.

* :func:`life_of` reads a run's whole history (not only its last epoch): a run that ends at
  chance either *never learned* or *learned, then died*, and then at which epoch.
* :func:`measure` takes a network's weights (a state dict, as the engine's ``on_snapshot`` hook
  hands them at each epoch's end) and a fixed sample of training images, and returns the norm
  of the loss's gradient for each linear layer's weights and the share of each hidden layer's
  ReLU units that output 0 on every sample image (*dead* units: no gradient reaches their
  weights again). It changes no number of the run: it builds its own copy of the network,
  draws no randomness from the training's generators, and only reads the weights.
* The run store calls :func:`observe` at each epoch's end for the experiments that ask for
  diagnostics (:func:`wanted`) and :func:`save` when the run is cached: the arrays go to a
  ``.diag.npz`` file beside the run's JSON entry. :func:`of` reads them, and for a run cached
  before (without the file) trains it again alone with the hook: the engine gives a run the
  same numbers alone as in any stack, so the diagnostics belong to the cached run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .results import atomic_file
from .settings import Settings

CHANCE = 0.1  # ten balanced classes
DEAD_BELOW = 2 * CHANCE  # as seeds.COLLAPSE_BELOW: below it, a run scores at chance level
SAMPLE_PER_CLASS = 100  # the fixed sample: 1,000 training images, 100 per class
SAMPLE_SEED = 0
FORMAT = 1  # bump when the layout of a .diag.npz changes

# Experiments whose runs carry diagnostics: the depth section's two models and the lr x depth
# map (study.DEPTH_LR, named "depth_lr_..."). Other runs skip the (small) cost.
DIAGNOSED = ("shallow", "deeper")
DIAGNOSED_PREFIX = "depth_lr_"


# ---------------------------------------------------------------------------------------------
# A run's life, from its history
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Life:
    """How a run went, read from every epoch of its history.

    ``kind``: "trained" (ended above chance), "never learned" (never above chance), "died"
    (above chance at some epoch, at chance at the end) or "diverged" (its loss became NaN).
    ``best_epoch``/``best_acc``: its best test accuracy and when; ``died_at``: the first epoch of
    the final stretch at chance ("died"), or the epoch it diverged in; ``started``: the first
    epoch above chance (a run that sat at chance before learning starts late).
    """

    kind: str
    best_epoch: int | None
    best_acc: float | None
    died_at: int | None = None
    started: int | None = None


def life_of(history, threshold: float = DEAD_BELOW) -> Life:
    """The :class:`Life` of a run with this :class:`~fmnist_helpers.engine.History`."""
    accs = [float(a) for a in history["test_acc"]] if len(history) else []
    best = int(np.argmax(accs)) if accs else None
    best_epoch = None if best is None else best + 1
    best_acc = None if best is None else accs[best]
    started = next((i + 1 for i, a in enumerate(accs) if a >= threshold), None)
    if history.diverged:
        return Life("diverged", best_epoch, best_acc, len(history) + 1, started)
    if not accs or max(accs) < threshold:
        return Life("never learned", best_epoch, best_acc)
    if accs[-1] >= threshold:
        return Life("trained", best_epoch, best_acc, None, started)
    start = len(accs)
    while start > 0 and accs[start - 1] < threshold:
        start -= 1
    return Life("died", best_epoch, best_acc, start + 1, started)


def life_phrase(seed: int, life: Life, pct=lambda x: f"{100 * x:.1f}%") -> str:
    """A run's collapse in words: "seed 0 learned (57.3% test accuracy after epoch 1), then
    died: from epoch 6 on it scores at chance"."""
    if life.kind == "diverged":
        return f"seed {seed} diverged in epoch {life.died_at} (its loss became NaN)"
    if life.kind == "never learned":
        return f"seed {seed} never moved away from guessing"
    if life.kind == "died":
        return (f"seed {seed} learned ({pct(life.best_acc)} test accuracy after epoch "
                f"{life.best_epoch}), then died: from epoch {life.died_at} on it scores at "
                "chance")
    if life.started and life.started > 1:
        return (f"seed {seed} sat at chance for {life.started - 1} epoch"
                f"{'s' * (life.started > 2)}, then learned ({pct(life.best_acc)} at best, after "
                f"epoch {life.best_epoch})")
    return f"seed {seed} trained ({pct(life.best_acc)} at best, after epoch {life.best_epoch})"


# ---------------------------------------------------------------------------------------------
# Gradient norms and dead units, from weights
# ---------------------------------------------------------------------------------------------

def sample(data, per_class: int = SAMPLE_PER_CLASS, seed: int = SAMPLE_SEED
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed stratified sample of training images (flattened) and their labels."""
    from .data import stratified_indices

    rows = stratified_indices(data.train.labels, per_class, seed)
    return data.train.images[rows].flatten(1).float(), data.train.labels[rows]


def _model(state: dict[str, torch.Tensor], n_linear: int, hidden: int, batch_norm: bool,
           dropout: float) -> nn.Sequential:
    from .models import build_mlp

    with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep torch's
        model = build_mlp(n_linear, hidden, batch_norm, dropout)  # generator as it was
    model.load_state_dict(state)
    return model.eval()


def measure(state: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
            n_linear: int, hidden: int, batch_norm: bool = False, dropout: float = 0.0
            ) -> dict[str, np.ndarray]:
    """Diagnostics of a network with weights ``state`` on ``images`` (the sample).

    Returns ``grad_norm`` (one per linear layer, input side first: the L2 norm of the mean
    cross-entropy's gradient with respect to that layer's weight matrix, in eval mode, no
    penalty), ``dead`` (one per hidden layer: the share of its ReLU units that output 0 on
    every image) and ``loss`` (the mean cross-entropy on the sample).
    """
    model = _model(state, n_linear, hidden, batch_norm, dropout)
    with torch.enable_grad():  # the engine calls the hook under no_grad
        x = images
        dead = []
        for module in model:
            x = module(x)
            if isinstance(module, nn.ReLU):
                dead.append(float((x.detach() <= 0).all(0).float().mean()))
        loss = nn.functional.cross_entropy(x, labels)
        weights = [m.weight for m in model if isinstance(m, nn.Linear)]
        grads = torch.autograd.grad(loss, weights)
    return {"grad_norm": np.array([float(g.norm()) for g in grads]),
            "dead": np.array(dead), "loss": np.array(float(loss.detach()))}


def wanted(experiment) -> bool:
    """Whether the run store records diagnostics for this experiment's runs."""
    return experiment.name in DIAGNOSED or experiment.name.startswith(DIAGNOSED_PREFIX)


class Recorder:
    """Diagnostics of one stack's members, epoch by epoch: the run store's hook-up.

    The planner makes one per stack with :func:`recorder_for` (None when no run of the stack
    asks for diagnostics), calls :meth:`observe` in its ``on_snapshot`` callback and
    :meth:`save` as it caches each run.
    """

    def __init__(self, data):
        self.images, self.labels = sample(data)
        self.rows: dict[int, list[dict[str, np.ndarray]]] = {}

    def observe(self, j: int, runs, state: dict[str, torch.Tensor] | None) -> None:
        """Record member ``j``'s diagnostics at this epoch (``runs``: the experiments it
        trains; ``state``: its weights now)."""
        if state is not None and any(wanted(e) for e in runs):
            e = runs[0]
            self.rows.setdefault(j, []).append(
                measure(state, self.images, self.labels, e.n_linear, e.hidden, e.batch_norm,
                        e.dropout))

    def save(self, j: int, experiment, epochs: int, entry: Path) -> None:
        """Write member ``j``'s first ``epochs`` rows beside the run's JSON ``entry``."""
        rows = self.rows.get(j)
        if wanted(experiment) and rows is not None:
            write(path_of(entry), rows[:epochs])


def recorder_for(members_runs, data) -> Recorder | None:
    """A :class:`Recorder` for a stack whose members train ``members_runs`` (a list of lists of
    experiments), or None when none of them asks for diagnostics (:func:`wanted`)."""
    if any(wanted(e) for runs in members_runs for e in runs):
        return Recorder(data)
    return None


def path_of(entry: Path) -> Path:
    """Where the diagnostics of the run cached at ``entry`` (a .json) are kept."""
    return Path(entry).with_suffix(".diag.npz")


def write(path: Path, rows: list[dict[str, np.ndarray]]) -> None:
    """Stack the per-epoch rows into arrays (epochs first) and write them atomically."""
    arrays = {"format": np.array(FORMAT)}
    if rows:
        arrays |= {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)


def read(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a .diag.npz (None when absent or of another format)."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if int(z["format"]) != FORMAT:
            return None
        return {k: z[k] for k in z.files if k != "format"}


def load_or_retrain(result) -> dict[str, np.ndarray]:
    """A run's diagnostics per epoch: ``grad_norm`` (epochs x linear layers), ``dead`` (epochs x
    hidden layers), ``loss`` (epochs). Read from the run store; a run cached without them is
    trained again alone, with the hook, and they are written beside its entry."""
    from .engine import train_stack
    from .runs import cache_path, get_data, member_for, shape_of
    from .settings import settings

    config = settings(result.quick)
    entry = cache_path(result.experiment, result.seed, result.quick, result.device)
    found = read(path_of(entry))
    if found is not None and len(found.get("loss", ())) == len(result.history):
        return found
    data = get_data(result.quick)
    recorder = Recorder(data)
    e = result.experiment

    def hook(j, history, snapshot):
        state = snapshot.state_dict()
        recorder.rows.setdefault(j, []).append(
            measure(state, recorder.images, recorder.labels, e.n_linear, e.hidden,
                    e.batch_norm, e.dropout))

    trained = train_stack(shape_of(e), [member_for(e, result.seed, data)], data,
                          device=config.device, on_snapshot=hook)[0]
    if trained.history["test_acc"] != result.history["test_acc"]:
        raise RuntimeError(f"{e.name} seed {result.seed}: training it again gave other numbers "
                           "than the cached run; its diagnostics would not be its own")
    rows = recorder.rows.get(0, [])[:len(result.history)]
    write(path_of(entry), rows)
    return read(path_of(entry))


def dead_share(diag: dict[str, np.ndarray]) -> np.ndarray:
    """Per epoch, the share of all hidden units that are dead (layers weighted by width)."""
    return diag["dead"].mean(1) if diag["dead"].size else np.zeros(len(diag["loss"]))


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


# ---------------------------------------------------------------------------------------------
# The lr x depth map (read by fmnist_helpers.why_deeper)
# ---------------------------------------------------------------------------------------------

MAP_SEEDS = (0, 1, 2)  # full settings; quick mode takes its own seeds (settings().seeds)
RESCUE_LRS = (0.3,)  # where batch norm is tried beside the map (depth: the deepest)


def map_experiment(depth: int, lr: float, batch_norm: bool = False):
    """The map's experiment at one cell: the study's model where it has these numbers (so the
    two share their cached runs), else ``study.DEPTH_LR``'s."""
    from .study import DEPTH_LR, STUDY

    experiment = DEPTH_LR[f"depth_lr_d{depth}_lr{lr:g}" + ("_bn" if batch_norm else "")]
    for known in STUDY.values():
        if known.numbers_key() == experiment.numbers_key():
            return known
    return experiment


def map_cells() -> list[tuple[int, float, bool]]:
    """(depth, lr, batch norm) of every cell: the plain map, then the rescue beside it."""
    from .study import DEPTH_LR_DEPTHS, DEPTH_LR_LRS

    plain = [(d, lr, False) for d in DEPTH_LR_DEPTHS for lr in DEPTH_LR_LRS]
    return plain + [(max(DEPTH_LR_DEPTHS), lr, True) for lr in RESCUE_LRS]


def map_runs(config: Settings | None = None) -> list[tuple]:
    """Every (experiment, seed) run of the map."""
    from .settings import settings

    config = config or settings()
    seeds = config.seeds if config.quick else MAP_SEEDS
    return [(map_experiment(*cell), s) for cell in map_cells() for s in seeds]


def map_results(config: Settings | None = None) -> list:
    """The map's runs: cached ones loaded, the missing ones trained (one plan)."""
    from .runs import train_runs
    from .settings import settings

    config = config or settings()
    return train_runs(map_runs(config), config)


# ---------------------------------------------------------------------------------------------
# Dead units of a finished network, on the whole test set
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def count_dead(model: nn.Module, images: torch.Tensor) -> list[int]:
    """Per hidden layer, the ReLU units of ``model`` (eval mode) at zero for every image."""
    zero: dict[int, torch.Tensor] = {}
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_hook(lambda _m, _i, out, k=k: _all_zero(zero, k, out))
             for k, m in enumerate(relus)]
    from .models import logits_in_chunks

    try:
        logits_in_chunks(model, images)  # eval mode; the hooks see one chunk per call
    finally:
        for hook in hooks:
            hook.remove()
    return [int(zero[k].sum()) for k in sorted(zero)]


def _all_zero(zero: dict[int, torch.Tensor], k: int, out: torch.Tensor) -> None:
    """Record which units of ReLU ``k`` stayed at zero on this chunk and every one before."""
    now = (out == 0).all(0)
    zero[k] = zero[k] & now if k in zero else now


def dead_units(result, data=None) -> list[int]:
    """Per hidden layer of the run's final network, the units dead on the whole test set."""
    from .learned import data_for

    data = data_for(result, data)
    return count_dead(result.model(), data.test.images)


def dead_units_table(results):
    """One row per run: dead units per hidden layer, their total, and the test accuracy."""
    rows = []
    for r in results:
        dead = dead_units(r)
        rows.append({"model": r.experiment.name, "seed": str(r.seed),
                     "dead units, layer 1 to last": ", ".join(map(str, dead)),
                     "dead of all": f"{sum(dead)} of {r.experiment.hidden * len(dead)}",
                     "test %": f"{100 * r.final['test_acc']:.1f}"})
    import pandas as pd

    from .tables import Table

    return Table(pd.DataFrame(rows), "A dead unit outputs zero for every test image: it passes "
                                     "no signal forward and no gradient back.")
