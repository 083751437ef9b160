"""Why the deeper network fails: the evidence from the diagnostics, the answer written from it,
and its figures.

:mod:`fmnist_helpers.diagnostics` measures (gradient norm per layer and dead units after every
epoch, the learning rate x depth map's runs); this module reads those measurements:
:func:`collapse_map` and :func:`plot_collapse_map` (seeds collapsed per depth and learning rate),
:func:`plot_why_deeper_fails` (each seed's test accuracy, dead units and first-layer gradient),
:func:`gradient_table`, and :func:`gather` / :func:`answer`, which weigh each of the study's
explanations on its own and say which one the evidence supports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .diagnostics import (
    SAMPLE_PER_CLASS,
    dead_share,
    finite,
    life_of,
    life_phrase,
    load_or_retrain,
)
from .style import COLLAPSED_STYLE, REFERENCE, caption, series, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import Result
    from .seeds import Seeds


def collapse_map(results):
    """Share of seeds that collapsed (:func:`seeds.collapsed`), per depth and learning rate:
    a row per depth (and per depth with batch norm), a column per learning rate; and the
    number of seeds per cell."""
    import pandas as pd

    from .seeds import collapsed

    rows = []
    for r in results:
        e = r.experiment
        rows.append({"network": f"depth {e.n_linear}" + (" + batch norm" if e.batch_norm else ""),
                     "lr": e.lr, "collapsed": collapsed(r)})
    frame = pd.DataFrame(rows)
    share = frame.pivot_table(index="network", columns="lr", values="collapsed", aggfunc="mean")
    count = frame.pivot_table(index="network", columns="lr", values="collapsed", aggfunc="size")
    order = sorted(share.index, key=lambda n: ("batch" in n, int(n.split()[1])))
    return share.loc[order], count.loc[order]


@dataclass(frozen=True)
class Evidence:
    """What the runs say about the deeper network's failure (every field computed)."""

    deaths: list            # (seed, Life, dead share of its deadest layer at its last epoch)
    never: list             # seeds of the deeper network that never learned
    survivors: int          # seeds of the deeper network that trained
    first_layer_ratio: float  # deeper / shallow first-layer gradient norm, survivors, median
    stuck_ratio: float      # the same for the seeds that never learned
    late: list              # (seed, Life, first-layer ratio while at chance) of late starters
    rising: float           # survivors' median test-accuracy gain over the last 3 epochs
    by_lr: dict             # lr -> share collapsed at the deepest depth, plain
    by_lr_shallow: dict     # lr -> share collapsed at the shallowest depth
    rescue: dict            # lr -> share collapsed at the deepest depth with batch norm
    deepest: int
    shallowest: int
    map_dead: dict = None   # lr -> (collapsed seeds with a wholly dead layer, collapsed seeds)

    @property
    def dead_layers_explain(self) -> bool:
        """Every seed that died had a layer whose every unit was dead at its last epoch."""
        return bool(self.deaths) and all(dead >= 1.0 for _, _, dead in self.deaths)

    @property
    def gradients_vanish(self) -> bool:
        """Trained deep seeds' first layer gets under a tenth of the shallow one's gradient."""
        return finite(self.first_layer_ratio) and self.first_layer_ratio < 0.1

    @property
    def lr_drives_it(self) -> bool:
        lrs = sorted(self.by_lr)
        return len(lrs) > 1 and self.by_lr[lrs[-1]] > self.by_lr[lrs[0]]

    @property
    def batch_norm_rescues(self) -> bool:
        return bool(self.rescue) and all(self.rescue[lr] < self.by_lr.get(lr, 0) or
                                         self.by_lr.get(lr, 0) == 0 for lr in self.rescue) \
            and sum(self.rescue.values()) < sum(self.by_lr.get(lr, 0) for lr in self.rescue)

    @property
    def still_rising(self) -> bool:
        """The trained deep seeds still gain more than half a point over their last 3 epochs."""
        return finite(self.rising) and self.rising > 0.005


def gather(shallow, deeper, map_runs_) -> Evidence:
    """The :class:`Evidence` from the shallow and deeper networks' seeds (``seeds.Seeds``,
    their diagnostics read or computed with :func:`of`) and the map's runs."""
    from .seeds import collapsed

    diag = {("deeper", r.seed): load_or_retrain(r) for r in deeper}
    diag |= {("shallow", r.seed): load_or_retrain(r) for r in shallow}
    deaths, never = [], []
    for r in deeper:
        life = life_of(r.history)
        d = diag["deeper", r.seed]
        if life.kind in ("died", "diverged"):
            deaths.append((r.seed, life, float(d["dead"][-1].max()) if len(d["dead"]) else 1.0))
        elif life.kind == "never learned":
            never.append(r.seed)
    kept = [r for r in deeper if not collapsed(r)]

    def ratio(runs) -> float:
        """Median over ``runs`` (and their epochs) of first-layer gradient norm against the
        shallow network's median at the same epoch."""
        out = []
        for r in runs:
            mine = diag["deeper", r.seed]["grad_norm"][:, 0]
            theirs = np.median([diag["shallow", s.seed]["grad_norm"][:len(mine), 0]
                                for s in shallow
                                if len(diag["shallow", s.seed]["loss"]) >= len(mine)], axis=0)
            out.append(float(np.median(mine / theirs)))
        return float(np.median(out)) if out else math.nan
    rising = [r.history["test_acc"][-1] - r.history["test_acc"][-4] for r in kept
              if len(r.history) >= 4]
    depths = sorted({r.experiment.n_linear for r in map_runs_})

    def share(depth, bn):
        out = {}
        for r in map_runs_:
            e = r.experiment
            if e.n_linear == depth and e.batch_norm == bn:
                out.setdefault(e.lr, []).append(collapsed(r))
        return {lr: float(np.mean(v)) for lr, v in sorted(out.items())}

    late = []
    for r in kept:
        life = life_of(r.history)
        if life.started and life.started > 1:
            mine = diag["deeper", r.seed]["grad_norm"][:life.started - 1, 0]
            theirs = np.median([diag["shallow", s.seed]["grad_norm"][:len(mine), 0]
                                for s in shallow], axis=0)
            late.append((r.seed, life, float(np.median(mine / theirs))))
    map_dead = {}
    for r in map_runs_:
        e = r.experiment
        if e.n_linear == depths[-1] and not e.batch_norm and collapsed(r) and len(r.history):
            d = load_or_retrain(r)
            n_dead, n = map_dead.get(e.lr, (0, 0))
            map_dead[e.lr] = (n_dead + int(d["dead"][-1].max() >= 1.0), n + 1)
    return Evidence(deaths, never, len(kept), ratio(kept),
                    ratio([r for r in deeper if r.seed in never]), late,
                    float(np.median(rising)) if rising else math.nan,
                    share(depths[-1], False), share(depths[0], False), share(depths[-1], True),
                    depths[-1], depths[0], dict(sorted(map_dead.items())))


def _shares(by_lr: dict) -> str:
    return ", ".join(f"{100 * v:.0f}% at lr {lr:g}" for lr, v in by_lr.items())


def answer(ev: Evidence) -> str:
    """Why the deeper network fails, in plain words, every number and verdict from ``ev``."""
    parts = []
    if ev.deaths:
        told = "; ".join(
            life_phrase(seed, life) + (f", with {100 * dead:.0f}% of the units of its deadest "
                                       "layer silent on every sample image" if dead < 1 else
                                       ", with every unit of one layer silent on every sample "
                                       "image")
            for seed, life, dead in ev.deaths)
        parts.append(f"**What fails.** {_cap(told)}.")
        if ev.dead_layers_explain:
            parts.append("A layer whose units all output 0 passes no signal forward and no "
                         "gradient back: the layers below it get a gradient of exactly 0 and "
                         "the network is stuck at a constant guess. That is a dead network, "
                         "not a slowly vanishing gradient.")
    else:
        parts.append("**What fails.** No seed of the deeper network died in these runs.")
    if ev.never:
        parts.append(f"Seed{'s' * (len(ev.never) > 1)} {', '.join(map(str, ev.never))} never "
                     "learned at all; its first layer got "
                     f"{ev.stuck_ratio:.2g} times the shallow network's gradient (median over "
                     "the epochs).")
    if ev.survivors:
        ratio = (f"{ev.first_layer_ratio:.2f} times" if finite(ev.first_layer_ratio)
                 else "(not measurable)")
        size = f"{100 * ev.rising:.1f}" if finite(ev.rising) else ""
        rose = (f", and their test accuracy rose by {size} point{'s' * (size != '1.0')} over "
                "their last three epochs (median)" if size else "")
        parts.append(
            f"**The seeds that trained** ({ev.survivors}) get a first-layer gradient "
            f"{ratio} the shallow network's (median over their epochs){rose}.")
    for seed, life, r in ev.late:
        parts.append(f"{_cap(life_phrase(seed, life))}: while at chance, its first layer got "
                     f"{r:.2g} times the shallow network's gradient.")
    parts.append(
        f"**The map.** At depth {ev.deepest}, {_shares(ev.by_lr)} of the seeds collapsed; at "
        f"depth {ev.shallowest}, {_shares(ev.by_lr_shallow)}."
        + (f" With batch norm at depth {ev.deepest}: {_shares(ev.rescue)}." if ev.rescue
           else "")
        + "".join(f" At lr {lr:g}, {_of(k, n, 'layer with every unit dead')}."
                  for lr, (k, n) in (ev.map_dead or {}).items()))
    # the verdict on the study's two explanations, chosen by the evidence
    late_vanish = [(seed, life) for seed, life, r in ev.late if finite(r) and r < 0.1]
    vanish_ok = epochs_ok = False
    if not ev.survivors:
        vanish = ("No seed of the deeper network trained here, so these runs cannot weigh the "
                  "study's two explanations against each other"
                  + (": the seeds that never learned got a gradient too small to move their "
                     "first layer, which is what vanishing gradients look like at the start, "
                     "and what more epochs may or may not overcome."
                     if finite(ev.stuck_ratio) and ev.stuck_ratio < 0.1 else "."))
        epochs = ""
    else:
        if ev.gradients_vanish:
            vanish_ok = True
            vanish = ("*Vanishing gradients*: supported. The deep seeds that trained get under "
                      "a tenth of the shallow network's gradient in their first layer.")
        elif late_vanish:
            vanish_ok = True
            vanish = ("*Vanishing gradients*: supported at the start only. "
                      + _cap(", ".join(f"seed {seed}" for seed, _ in late_vanish))
                      + " sat at chance while its first layer got under a tenth of the shallow "
                        "network's gradient; the seeds that trained got a gradient of the same "
                        "order as the shallow network's.")
        else:
            vanish = ("*Vanishing gradients*: not supported. The deep seeds that trained get a "
                      "first-layer gradient of the same order as the shallow network's"
                      + (", and the dead ones none at all, cut off at a dead layer"
                         if ev.dead_layers_explain else "") + ".")
        reasons = []
        if ev.late:
            reasons.append(", ".join(f"seed {seed} spent {life.started - 1} epoch"
                                     f"{'s' * (life.started > 2)} at chance before it learned"
                                     for seed, life, _ in ev.late))
        if ev.still_rising:
            reasons.append("the seeds that trained were still improving when training stopped")
        epochs_ok = bool(reasons)
        epochs = (f"*Too few epochs*: supported in part: {'; '.join(reasons)}. More epochs "
                  "cannot revive a seed that died, though." if epochs_ok else
                  "*Too few epochs*: not supported. The seeds that trained had levelled off, "
                  "and more epochs cannot revive a dead one.")
    cause = ""
    if ev.lr_drives_it:
        top = max(ev.by_lr)
        deeper_worse = ev.by_lr[top] > ev.by_lr_shallow.get(top, 0)
        dead = [(k, n) for lr, (k, n) in (ev.map_dead or {}).items() if lr == top]
        cause = ("What the evidence shows beyond the study's two: a learning rate too large "
                 "for the depth. Collapses grow with the learning rate"
                 + (" and with depth" if deeper_worse else "")
                 + (f"; at lr {top:g}, "
                    f"{_of(*dead[0], 'layer whose every unit is dead at the end')}"
                    if dead else "")
                 + ("; batch norm prevents the collapses" if ev.batch_norm_rescues else "")
                 + ".")
    named = [n for n, ok in (("too few epochs", epochs_ok), ("vanishing gradients", vanish_ok))
             if ok]
    if ev.survivors:
        verdict = ("Of the study's two explanations, the evidence supports "
                   + ("both, each in part." if len(named) == 2 else
                      f"*{named[0]}*." if named else "neither."))
        cause = f"{cause} {verdict}".strip()
    parts.append("**The answer.** " + " ".join(t for t in (vanish, epochs, cause) if t))
    return "\n\n".join(parts)


def _of(k: int, n: int, thing: str) -> str:
    """How many of the n collapsed deep seeds had a ``thing``: "all 3 collapsed deep seeds had
    a layer ...", "the one collapsed deep seed had no layer ..."."""
    if n == 1:
        return f"the one collapsed deep seed had {'a' if k else 'no'} {thing}"
    if k == 0:
        return f"none of the {n} collapsed deep seeds had a {thing}"
    who = f"all {n}" if k == n else f"{k} of the {n}"
    return f"{who} collapsed deep seeds had a {thing}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def died_elsewhere(map_runs_, most: int = 2) -> list:
    """Runs of the map at its deepest depth, without batch norm and at a learning rate other
    than the study's, that learned, then died (at most ``most``): the learn-then-die
    trajectory, where the deeper network's own seeds show none."""
    from .study import STUDY

    deepest = max(r.experiment.n_linear for r in map_runs_)
    return [r for r in map_runs_ if r.experiment.n_linear == deepest
            and not r.experiment.batch_norm and r.experiment.lr != STUDY["deeper"].lr
            and life_of(r.history).kind == "died"][:most]


def gradient_table(models, epoch: int | None = None):
    """Gradient norm per linear layer (rows, input side first) for each seed (columns) of one
    model, at ``epoch`` (default: each seed's last), with each seed's fate in its name."""
    import pandas as pd

    columns = {}
    for r in models:
        d = load_or_retrain(r)
        at = len(d["loss"]) if epoch is None else min(epoch, len(d["loss"]))
        life = life_of(r.history)
        tag = {"died": f", died in epoch {life.died_at}", "never learned": ", never learned",
               "diverged": ", diverged"}.get(life.kind, "")
        columns[f"seed {r.seed} (epoch {at}{tag})"] = d["grad_norm"][at - 1]
    frame = pd.DataFrame(columns)
    frame.index = [f"layer {i + 1}" for i in range(len(frame))]
    return frame


# ---------------------------------------------------------------------------------------------
# Why the deeper network fails (diagnostics per epoch, the lr x depth map)
# ---------------------------------------------------------------------------------------------

@styled
def plot_why_deeper_fails(shallow: Seeds, deeper: Seeds, others: Sequence[Result] = ()
                          ) -> Figure:
    """Each seed of the deeper network per epoch: test accuracy (a seed that learned, then died
    annotated where it peaked and where it died), the share of its hidden units that are dead,
    and the gradient norm reaching its first layer; the shallow network's median in grey.
    ``others``: more runs to draw the same way, named by their experiment (a deep run of the
    learning-rate map that learned, then died: :func:`diagnostics.died_elsewhere`)."""

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    ref = {"color": REFERENCE["color"], "linewidth": 2, "linestyle": "--",
           "label": "shallow (median)"}
    any_plain = False
    for r in [*deeper, *others]:
        d, life = load_or_retrain(r), life_of(r.history)
        epochs = np.arange(1, len(r.history) + 1)
        dead_seed = life.kind in ("died", "diverged", "never learned")
        style = {"color": COLLAPSED_STYLE["color"], "linewidth": 1.8} if dead_seed else \
            {"color": series(0)["color"], "linewidth": 1, "alpha": 0.6}
        late = life.kind == "trained" and life.started and life.started > 1
        if late:
            style = {"color": series(2)["color"], "linewidth": 1.8}
        special = dead_seed or late
        who = f"seed {r.seed}" if r.experiment.name == deeper.name else \
            f"{r.experiment.title.lower()}, seed {r.seed}"
        name = (who + (" (died)" if life.kind == "died" else
                                    " (late start)" if late else "")) if special else \
            ("other seeds" if not any_plain else None)
        any_plain = any_plain or not special
        axes[0].plot(epochs, r.history["test_acc"], marker="o", markersize=3, label=name, **style)
        axes[1].plot(epochs, dead_share(d), marker="o", markersize=3, **style)
        axes[2].plot(epochs, d["grad_norm"][:, 0], marker="o", markersize=3, **style)
        if late:
            axes[0].annotate(f"{who} leaves chance in epoch {life.started}",
                             (life.started, r.history["test_acc"][life.started - 1]),
                             xytext=(25, -18), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
        if life.kind == "died":
            axes[0].annotate(f"{who} learned: {100 * life.best_acc:.0f}%",
                             (life.best_epoch, life.best_acc), xytext=(12, 8),
                             textcoords="offset points", fontsize=8, color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
            axes[0].annotate(f"dead from epoch {life.died_at}",
                             (life.died_at, r.history["test_acc"][life.died_at - 1]),
                             xytext=(8, 10), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
            dead_now = dead_share(d)[life.died_at - 1]
            axes[1].annotate(f"{100 * dead_now:.0f}% of units dead", (life.died_at, dead_now),
                             xytext=(25, 25), textcoords="offset points", fontsize=8,
                             color=style["color"],
                             arrowprops={"arrowstyle": "->", "color": style["color"]})
    diags = [load_or_retrain(r) for r in shallow]
    n = min(len(x["loss"]) for x in diags)
    epochs = np.arange(1, n + 1)
    axes[0].plot(*shallow.curve("test_acc"), **ref)
    axes[1].plot(epochs, np.median([dead_share(x)[:n] for x in diags], axis=0), **ref)
    axes[2].plot(epochs, np.median([x["grad_norm"][:n, 0] for x in diags], axis=0), **ref)
    axes[0].axhline(0.1, color="#999999", linewidth=0.8, linestyle=":")
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(-0.02, 1.02)
    for ax in axes[:2]:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[2].set_yscale("symlog", linthresh=1e-4)
    for ax, title in zip(axes, ("test accuracy", "hidden units dead on every sample image",
                                "gradient norm, first layer"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return caption(fig, "Each seed of the deeper network after every epoch (red: a seed that "
                        "collapsed; green: one that sat at chance before it learned"
                        + ("; a run named by its learning rate comes from the map below"
                           if others else "") + "), measured "
                        f"on a fixed sample of {10 * SAMPLE_PER_CLASS:,} training images; dashed "
                        "grey: the shallow "
                        "network's median. A dead unit outputs 0 for every image, so no "
                        "gradient flows through it.")


@styled
def plot_collapse_map(share, count, ax: Axes | None = None) -> Figure:
    """Share of seeds that collapsed per depth (rows, batch norm last) and learning rate."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * share.shape[1] + 2.5, 0.7 * share.shape[0] + 1.6),
                             constrained_layout=True)
    image = ax.imshow(share.to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.grid(False)
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            value, n = share.iat[i, j], count.iat[i, j]
            if np.isnan(value):
                text, colour = "not run", "#777777"
            else:
                text = f"{round(value * n):.0f} of {n:.0f}"
                colour = "white" if value > 0.5 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(share.shape[1]), [f"{lr:g}" for lr in share.columns])
    ax.set_yticks(range(share.shape[0]), list(share.index))
    ax.set_xlabel("learning rate")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.05)
    bar.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    bar.set_label("seeds collapsed")
    return caption(ax.figure, "Seeds that collapsed to chance (or diverged) after 10 epochs of "
                              "the study's recipe, per network and learning rate; the last "
                              "rows: batch norm after every hidden ReLU.")
