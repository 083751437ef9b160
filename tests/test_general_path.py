"""The engine's general path (autograd over the stacked tensors, any activation and optimizer),
batch sizes other than the study's 32, and training subsets, on the real data (quick subset)."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fmnist_helpers.bridge import member_for, shape_of, training_subset, validation_rows
from fmnist_helpers.constraints import ACTIVATIONS, OPTIMIZERS
from fmnist_helpers.engine import EarlyStopping, Member, Shape, evaluate, train_stack
from fmnist_helpers.models import ACTIVATION_MODULES, build_mlp, weight_penalty
from fmnist_helpers.recipe import train_plain
from fmnist_helpers.study import Experiment


def _fresh(m: Member) -> Member:
    return Member(m.seed, m.lr, m.epochs, m.dropout, m.l1, m.l2, m.l2_first,
                  None if m.early_stopping is None else EarlyStopping(1, 0.02))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_trains_as_the_plain_loop_and_its_model_is_the_engines(activation,
                                                                                quick_data):
    """SGD, lr 0.1: the engine's test loss per epoch is the plain loop's within 1e-4."""
    torch.manual_seed(0)
    plain = train_plain(build_mlp(3, 10, activation=activation), quick_data, epochs=3, seed=0)
    (t,) = train_stack(Shape(activation=activation), [Member(0, epochs=3)], quick_data)
    assert t.history["test_loss"] == pytest.approx([r["test_loss"] for r in plain], abs=1e-4)
    assert t.history["train_loss"][2] < t.history["train_loss"][0]  # it learns (sigmoid slowly)
    hidden = [m for m in t.model if type(m) in ACTIVATION_MODULES.values()]
    assert {type(m) for m in hidden} == {ACTIVATION_MODULES[activation]}
    score = evaluate(t.model, quick_data.test.images, quick_data.test.labels)
    assert score["acc"] == t.history.last["test_acc"]  # the model returned is the one trained


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_trains(optimizer, quick_data):
    lr = 1e-3 if optimizer == "adam" else 0.05
    (t,) = train_stack(Shape(optimizer=optimizer), [Member(1, lr=lr, epochs=2, l2=1e-4)],
                       quick_data, gradients="autograd")
    losses = t.history["train_loss"]
    assert all(map(math.isfinite, losses)) and losses[1] < losses[0]
    assert t.history.last["test_acc"] > 0.3  # chance is 0.1: it learned on the real data


def _plain_adam_tanh(data, seed: int, epochs: int, lr: float, l2: float) -> list[float]:
    """The reference: nn.Sequential, torch.optim.Adam, the engine's initialisation and order."""
    torch.manual_seed(seed)
    model = build_mlp(3, 10, activation="tanh")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for batch in torch.randperm(len(data.train), generator=shuffle).split(32):
            loss = F.cross_entropy(model(data.train.images[batch]), data.train.labels[batch])
            optimizer.zero_grad()
            (loss + weight_penalty(model, l2=l2)).backward()
            optimizer.step()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(data.test.images), data.test.labels).item())
    return losses


def test_the_general_path_is_a_plain_pytorch_loop_with_adam(quick_data):
    """tanh + Adam + L2: the engine's test loss per epoch is the plain loop's within 1e-4."""
    plain = _plain_adam_tanh(quick_data, 5, 3, 1e-3, 1e-4)
    (t,) = train_stack(Shape(activation="tanh", optimizer="adam"),
                       [Member(5, lr=1e-3, epochs=3, l2=1e-4)], quick_data)
    assert t.history["test_loss"] == pytest.approx(plain, abs=1e-4)


@pytest.mark.parametrize("batch_size", [32, 128])
def test_written_and_autograd_paths_agree_on_the_study_recipe(batch_size, quick_data):
    """ReLU + SGD (dropout, L1/L2): the two paths' histories within 1e-4 in loss, 0.005 in
    accuracy (2.5 test images of 500): the gradients are the same sums in another order."""
    shape = Shape(batch_size=batch_size)
    member = Member(2, lr=0.05, epochs=3, dropout=0.2, l1=1e-4, l2=1e-4)
    (written,) = train_stack(shape, [_fresh(member)], quick_data, gradients="written")
    (general,) = train_stack(shape, [_fresh(member)], quick_data, gradients="autograd")
    for a, b in zip(written.history.rows, general.history.rows, strict=True):
        for key in ("train_loss", "test_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-4)
        for key in ("train_acc", "test_acc"):
            assert a[key] == pytest.approx(b[key], abs=0.005)


GENERAL_CASES = {
    "tanh adam": (Shape(activation="tanh", optimizer="adam"), Member(0, lr=2e-3, epochs=3,
                                                                      dropout=0.2, l1=1e-4)),
    "sigmoid momentum batch norm": (Shape(3, 10, True, "sigmoid", "momentum"),
                                    Member(1, lr=0.05, epochs=3, l2=1e-4)),
    "leaky sgd 64": (Shape(activation="leaky_relu", batch_size=64), Member(2, epochs=3)),
}


@pytest.mark.parametrize("case", list(GENERAL_CASES))
def test_general_path_same_numbers_alone_or_in_any_stack(case, quick_data):
    """Bit for bit on the CPU: alone, with its seeds, beside mates that leave early."""
    shape, member = GENERAL_CASES[case]
    (alone,) = train_stack(shape, [_fresh(member)], quick_data)
    mates = [Member(10, lr=1e-3, epochs=1), Member(11, lr=0.01, epochs=2, dropout=0.5, l2=1e-3)]
    twin = Member(member.seed, lr=0.02, epochs=2)  # same seed: same batches
    for make in (lambda me: [*mates, me], lambda me: [me, Member(20, member.lr, 3)],
                 lambda me: [mates[0], twin, me]):
        me = _fresh(member)
        mine = next(t for t in train_stack(shape, make(me), quick_data) if t.member is me)
        assert mine.history.rows == alone.history.rows, f"{case} differs in a stack"
        for a, b in zip(alone.model.state_dict().values(), mine.model.state_dict().values(),
                        strict=True):
            assert torch.equal(a, b)


def test_batch_size_sets_the_steps_and_the_written_path_takes_it(quick_data):
    steps = []
    (t,) = train_stack(Shape(batch_size=128), [Member(3, epochs=1)], quick_data,
                       on_batch=lambda step, per_epoch, k: steps.append(per_epoch))
    assert set(steps) == {math.ceil(2000 / 128)} and len(steps) == 16
    assert t.history.last["test_acc"] > 0.25  # chance is 0.1


def test_training_subset_is_stratified_fixed_and_scaled_in_quick_mode(quick_data):
    rows = training_subset(quick_data, 6_000)  # 10% of 60,000: 200 of quick mode's 2,000
    assert len(rows) == 200 and torch.equal(rows, training_subset(quick_data, 6_000))
    assert torch.bincount(quick_data.train.labels[rows], minlength=10).tolist() == [20] * 10
    assert len(training_subset(quick_data, 1_000)) == 30  # at least one image per class
    assert training_subset(quick_data, None) is None
    assert training_subset(quick_data, 60_000) is None  # all of them
    train, held = validation_rows(quick_data, 4, rows)
    assert set(train.tolist()) | set(held.tolist()) == set(rows.tolist())
    assert not set(train.tolist()) & set(held.tolist()) and len(held) == 10


def test_a_subset_trains_through_the_bridge_the_same_for_every_seed(quick_data):
    small = Experiment("small", "", train_size=6_000, epochs=4)
    members = [member_for(small, s, quick_data) for s in (0, 1)]
    assert torch.equal(members[0].train_rows, members[1].train_rows)
    steps = []
    trained = train_stack(shape_of(small), members, quick_data,
                          on_batch=lambda step, per_epoch, k: steps.append(per_epoch))
    assert set(steps) == {math.ceil(200 / 32)}
    for t in trained:  # train_acc is measured on the member's own 200 rows
        assert round(t.history.last["train_acc"] * 200, 6).is_integer()
        assert t.history["train_loss"][-1] < t.history["train_loss"][0]
    with pytest.raises(ValueError, match="validation split needs at least 120"):
        member_for(small.replace(train_size=1_000, early_stopping="validation"), 0, quick_data)


def test_the_written_path_refuses_what_it_does_not_cover(quick_data):
    with pytest.raises(ValueError, match="ReLU and plain SGD only.*'tanh'"):
        train_stack(Shape(activation="tanh"), [Member(0, epochs=1)], quick_data,
                    gradients="written")
    with pytest.raises(ValueError, match="gradients must be"):
        train_stack(Shape(), [Member(0, epochs=1)], quick_data, gradients="by hand")


def test_new_knobs_enter_the_cache_key_only_when_changed():
    base = Experiment("shallow", "")
    assert not {"activation", "optimizer", "batch_size", "train_size"} & set(base.numbers_key())
    changed = base.replace(activation="tanh", optimizer="adam", batch_size=64, train_size=1000)
    assert {k: changed.numbers_key()[k] for k in ("activation", "optimizer", "batch_size",
                                                  "train_size")} == {
        "activation": "tanh", "optimizer": "adam", "batch_size": 64, "train_size": 1000}
    assert isinstance(changed.build()[2], nn.Tanh)


def test_the_planner_stacks_runs_by_training_set_size_and_recipe():
    from fmnist_helpers.planner import plan

    shallow = Experiment("shallow", "")
    runs = [(shallow, 0), (shallow.replace(name="small", train_size=1_000), 0),
            (shallow.replace(name="tanh", activation="tanh"), 0), (shallow.replace(name="d"), 1)]
    stacks = plan(runs)
    assert sorted(sorted(e.name for t in s for e in t.runs) for s in stacks) == [
        ["d", "shallow"], ["small"], ["tanh"]]


def test_the_small_data_setting_and_the_recipe_column():
    from fmnist_helpers.settings import settings
    from fmnist_helpers.study import SMALL_DATA, get_experiment, small_data_runs
    from fmnist_helpers.tables import recipe_text

    runs = small_data_runs(settings(quick=True))
    assert len(runs) == 3 * len(settings(quick=True).seeds)
    assert {e.train_size for e in SMALL_DATA.values()} == {1_000}
    assert get_experiment("small_data_l2") is SMALL_DATA["small_data_l2"]
    assert recipe_text(Experiment("a", "")) == "study's"
    assert recipe_text(Experiment("a", "", activation="tanh", optimizer="adam", batch_size=64,
                                  train_size=1_000)) == "tanh, adam, batches of 64, 1,000 images"
