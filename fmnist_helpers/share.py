"""A setting as one short string, ``depth=8&width=10&dropout=0&act=tanh&opt=adam&bs=128``: the
explorer page's URL fragment, the playground's settings box, and copy as code.

:data:`KEYS` is the format, written once: each short key, the
:class:`~fmnist_helpers.study.Experiment` field it sets (or ``seed``), and how its value is
spelled. :func:`decode` reads a string (or a whole link: everything up to ``#`` is skipped)
into fields, each checked against :data:`~fmnist_helpers.constraints.CONSTRAINTS`;
:func:`encode` writes fields back. :func:`of_experiment` is an experiment's string (the
study's recipe left out), :func:`explorer_link` the explorer page at its depth, width and
dropout, and :func:`code_for` the notebook lines that train its five seeds. The explorer's
script reads the same keys from :data:`EXPLORER_KEYS`.
"""

from __future__ import annotations

import dataclasses

from .constraints import CONSTRAINTS, MAX_TRAIN, check
from .study import Experiment

# short key -> (field, kind); kinds: int, float, bool (on/off), text, images (a count or "all"),
# stopping (off, test or validation)
KEYS: dict[str, tuple[str, str]] = {
    "depth": ("n_linear", "int"),
    "width": ("hidden", "int"),
    "dropout": ("dropout", "float"),
    "bn": ("batch_norm", "bool"),
    "act": ("activation", "text"),
    "opt": ("optimizer", "text"),
    "bs": ("batch_size", "int"),
    "lr": ("lr", "float"),
    "n": ("train_size", "images"),
    "epochs": ("epochs", "int"),
    "l1": ("l1", "float"),
    "l2": ("l2", "float"),
    "l2first": ("l2_first", "float"),
    "es": ("early_stopping", "stopping"),
    "seed": ("seed", "int"),
}
FIELD_KEYS = {field: key for key, (field, _) in KEYS.items()}
ALWAYS = ("depth", "width", "dropout")  # in every experiment's string: the explorer's sliders
EXPLORER_PAGE = "explorer.html"
EXPLORER_KEYS = {"depth": "depth", "width": "width", "dropout": "dropout", "batch_norm": "bn"}
# ^ the explorer's slider -> its key in the fragment
RECIPE = Experiment("recipe", "")  # the study's recipe: what a string leaves out
EXAMPLE = "depth=8&width=10&dropout=0&act=tanh&opt=adam&bs=128&lr=0.01&n=2000"


def _spell(kind: str, value) -> str:
    if kind == "bool":
        return "on" if value else "off"
    if kind == "stopping":
        return value or "off"
    if kind == "images":
        return "all" if value is None else str(value)
    if kind == "float":
        short = f"{value:g}"
        return short if float(short) == value else repr(float(value))
    return str(value)


def _read(key: str, kind: str, text: str):
    """One value as its kind, or ValueError naming the key, the value and what it may be."""
    choices = {"bool": {"on": True, "off": False},
               "stopping": {"off": None, "test": "test", "validation": "validation"}}
    try:
        if kind in choices:
            return choices[kind][text]
        if kind == "images":
            return None if text == "all" else int(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        return text
    except (KeyError, ValueError):
        allowed = {"bool": "on or off", "stopping": "off, test or validation",
                   "images": "a whole number of images or all", "int": "a whole number",
                   "float": "a number"}[kind]
        raise ValueError(f"settings string: {key}={text!r} is not {allowed}; write e.g. "
                         f"{EXAMPLE}") from None


def _check(key: str, field: str, value) -> None:
    if field not in CONSTRAINTS:  # batch norm: on or off
        if not isinstance(value, bool):
            raise ValueError(f"settings string: {key} must be True or False (on or off), got "
                             f"{value!r}")
        return
    try:
        check(field, value, label=f"{key} ({CONSTRAINTS[field].label})")
    except ValueError as e:
        raise ValueError(f"settings string: {e}") from None


def decode(text: str) -> dict:
    """The fields a settings string sets, ``{"n_linear": 8, "activation": "tanh", ...}``.

    ``text`` may be a whole link (``explorer.html#depth=8&width=10``) or empty. An unknown
    key, a key given twice or a value a field may not take raises ``ValueError`` naming it.
    """
    text = text.strip()
    text = text.split("#", 1)[1] if "#" in text else text
    fields: dict = {}
    for part in filter(None, text.split("&")):
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if key not in KEYS:
            raise ValueError(f"settings string: unknown key {key!r}; the keys are "
                             f"{', '.join(KEYS)} (e.g. {EXAMPLE})")
        if not sep:
            raise ValueError(f"settings string: {key!r} has no value; write {key}=VALUE")
        field, kind = KEYS[key]
        if field in fields:
            raise ValueError(f"settings string: {key!r} is given twice; keep one")
        value = _read(key, kind, raw)
        _check(key, field, value)
        fields[field] = None if field == "train_size" and value == MAX_TRAIN else value
    return fields


def encode(settings: dict) -> str:
    """A settings string of ``settings`` (fields or short keys -> values), in :data:`KEYS`'
    order; every value is checked as :func:`decode` checks it."""
    by_key = {}
    for name, value in settings.items():
        key = name if name in KEYS else FIELD_KEYS.get(name)
        if key is None:
            raise ValueError(f"settings string: unknown setting {name!r}; use a field or key "
                             f"of: {', '.join(KEYS)}")
        field, kind = KEYS[key]
        if field == "train_size" and value == MAX_TRAIN:
            value = None  # every training image: the same as "all"
        _check(key, field, value)
        by_key[key] = _spell(kind, value)
    return "&".join(f"{key}={by_key[key]}" for key in KEYS if key in by_key)


def of_experiment(experiment: Experiment, seed: int = 0) -> str:
    """An experiment's settings string: depth, width and dropout, and every other knob that
    differs from the study's recipe (a seed other than 0 too)."""
    fields = {field: getattr(experiment, field) for key, (field, _) in KEYS.items()
              if key != "seed" and (key in ALWAYS
                                    or getattr(experiment, field) != getattr(RECIPE, field))}
    return encode(fields | ({"seed": seed} if seed else {}))


def explorer_link(experiment: Experiment, page: str = EXPLORER_PAGE) -> str:
    """The explorer page at the experiment's depth, width, dropout (and batch norm if on):
    ``explorer.html#depth=8&width=10&dropout=0``."""
    fields = {f: getattr(experiment, f) for f in ("n_linear", "hidden", "dropout")}
    return f"{page}#{encode(fields | ({'bn': True} if experiment.batch_norm else {}))}"


def code_for(experiment: Experiment, name: str = "mine") -> str:
    """Notebook lines that define ``experiment`` (its knobs away from the study's recipe) and
    train or load its seeds."""
    skip = {"name", "title", "notes"}
    changed = [f"{f.name}={getattr(experiment, f.name)!r}"
               for f in dataclasses.fields(Experiment)
               if f.name not in skip and getattr(experiment, f.name) != getattr(RECIPE, f.name)]
    title = of_experiment(experiment)
    args = ", ".join([repr(name), repr(title), *changed])
    return ("from fmnist_helpers.seeds import load_or_train\n"
            "from fmnist_helpers.study import Experiment\n\n"
            f"{name} = Experiment({args})\n"
            f"({name}_seeds,) = load_or_train({name})  # every seed of settings(): cached runs "
            "loaded, the others trained\n"
            f"{name}_seeds.summary()")
