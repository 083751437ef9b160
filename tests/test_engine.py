"""The engine: the recipe, early stopping, and the same numbers alone or in any stack."""

import math

import pytest
import torch

from fmnist_helpers import engine
from fmnist_helpers import stack as stack_module
from fmnist_helpers.engine import EarlyStopping, Member, Shape, evaluate, train_stack
from fmnist_helpers.models import build_mlp
from fmnist_helpers.recipe import train_plain
from fmnist_helpers.stack import EVAL_CHUNK, Stack, _sign

SHALLOW = Shape(3, 10, False)


def _stop_epoch(values, **kwargs):
    stopper = EarlyStopping(**kwargs)
    for epoch, value in enumerate(values, 1):
        if stopper.step(value, epoch):
            return epoch, stopper.best_epoch
    return None, stopper.best_epoch


def test_early_stopping_on_scripted_histories():
    # improves by >= 0.01 for three epochs, then three epochs of too-small gains
    assert _stop_epoch([1.0, 0.9, 0.8, 0.795, 0.792, 0.7905, 0.5]) == (6, 3)
    # a fall of exactly 0.01 counts ("at least 0.01"), despite float rounding
    assert _stop_epoch([0.8, 0.79, 0.78, 0.775, 0.775, 0.775]) == (6, 3)
    # a real improvement resets the count
    assert _stop_epoch([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]) == (7, 4)
    assert _stop_epoch([1.0 - 0.1 * k for k in range(8)]) == (None, 8)
    assert _stop_epoch([1.0, 2.0, 3.0], patience=1) == (2, 1)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_history_has_every_column_and_sane_values(quick_data):
    (t,) = train_stack(SHALLOW, [Member(0, epochs=2)], quick_data)
    h = t.history
    assert h["epoch"] == [1, 2] and not h.stopped_early and h.diverged is None
    for row in h.rows:
        for key in ("train_loss", "train_acc", "train_acc_running", "test_loss", "test_acc",
                    "test_acc_study"):
            assert math.isfinite(row[key])
        assert 0 <= row["test_acc"] <= 1
        assert round(row["test_acc"] * 500, 6).is_integer()  # 500 quick test images
    assert h.last["test_acc"] > 0.5  # it learned something on real data
    # the returned model holds the final weights: its own evaluation agrees with the history
    score = evaluate(t.model, quick_data.test.images, quick_data.test.labels)
    assert score["acc"] == h.last["test_acc"]
    assert score["loss"] == pytest.approx(h.last["test_loss"], rel=1e-5)


def test_the_engine_runs_the_plain_recipe(quick_data):
    """Same history as the 15-line PyTorch loop of notebook 01, within float rounding."""
    for l1, l2 in ((0.0, 0.0), (1e-3, 1e-4)):
        torch.manual_seed(3)
        plain = train_plain(build_mlp(), quick_data, epochs=2, lr=0.05, seed=3, l1=l1, l2=l2)
        (t,) = train_stack(SHALLOW, [Member(3, lr=0.05, epochs=2, l1=l1, l2=l2)], quick_data)
        for a, b in zip(plain, t.history.rows, strict=True):
            assert a["test_loss"] == pytest.approx(b["test_loss"], abs=1e-4)
            assert a["test_acc"] == pytest.approx(b["test_acc"], abs=0.01)


@pytest.mark.parametrize("shape", [Shape(3, 10, True), Shape(4, 7, False)])
def test_the_written_out_backward_pass_matches_autograd(shape, quick_data):
    members = [Member(0, dropout=0.3), Member(1), Member(2, dropout=0.5)]
    x = quick_data.train.images[:96].flatten(1).view(3, 32, -1)
    y = quick_data.train.labels[:96].view(3, 32)
    stack = Stack(shape, members, torch.device("cpu"))
    rngs = [g.bit_generator.state for g in stack.dropout_rngs]
    losses, _, grads = stack.loss_and_gradients(x, y)
    for g, state in zip(stack.dropout_rngs, rngs, strict=True):  # the same dropout masks
        g.bit_generator.state = state
    for p in stack.params.values():
        p.requires_grad_()
    logits = stack.forward(x, training=True)
    again = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                              reduction="none").view(3, 32).mean(1)
    assert torch.allclose(losses, again, rtol=1e-6)
    auto = torch.autograd.grad(again.sum(), list(stack.params.values()))
    grads[stack.first] = stack.first_layer_gradient(grads[stack.first])  # from its factors
    for name, theirs in zip(stack.params, auto, strict=True):
        assert torch.allclose(grads[name], theirs, rtol=1e-4, atol=1e-6), name


def _alone(shape, member, data):
    return train_stack(shape, [member], data)[0]


def _fresh(m: Member) -> Member:
    """The same member with a fresh early-stopping rule (a rule keeps state)."""
    rule = m.early_stopping
    if rule is not None:
        rule = EarlyStopping(rule.patience, rule.min_delta, rule.monitor)
    return Member(m.seed, m.lr, m.epochs, m.dropout, m.l1, m.l2, m.l2_first, rule,
                  m.train_rows, m.validation_rows)


CASES = {
    "plain": (SHALLOW, Member(0, epochs=3)),
    "dropout": (SHALLOW, Member(1, epochs=3, dropout=0.2)),
    "penalised": (SHALLOW, Member(2, lr=0.05, epochs=3, l1=1e-3, l2=1e-4, l2_first=1e-4)),
    "early stopping": (SHALLOW, Member(3, epochs=8, early_stopping=EarlyStopping(1, 0.02))),
    "batch norm": (Shape(3, 10, True), Member(4, epochs=3, dropout=0.2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_numbers_alone_or_in_any_stack(case, quick_data):
    """Bit for bit: alone, with its seeds, with other experiments, while mates stop early."""
    shape, member = CASES[case]
    alone = _alone(shape, _fresh(member), quick_data)
    mates = [Member(10, epochs=1), Member(11, epochs=2, dropout=0.5),  # leave early
             Member(12, lr=0.01, epochs=3, l2=1e-3)]
    seeds = [Member(s, member.lr, member.epochs, member.dropout, member.l1, member.l2,
                    member.l2_first) for s in (20, 21)]
    twin = Member(member.seed, lr=0.05, epochs=2, l2=1e-3)  # same seed: same batches, one product
    for make in (lambda me: [*mates, me], lambda me: [me, *seeds], lambda me: [me, mates[0]],
                 lambda me: [mates[0], twin, me]):
        me = _fresh(member)
        together = train_stack(shape, make(me), quick_data)
        mine = next(t for t in together if t.member is me)
        assert mine.history.rows == alone.history.rows, f"{case} differs in a stack"
        assert mine.history.stopped_early == alone.history.stopped_early
        for a, b in zip(alone.model.state_dict().values(), mine.model.state_dict().values(),
                        strict=True):
            assert torch.equal(a, b)
    if case == "early stopping":
        assert alone.history.stopped_early and len(alone.history) < member.epochs


def test_same_seed_same_numbers_other_seed_others(quick_data):
    def run(seed):
        return _alone(Shape(3, 10, True), Member(seed, epochs=2, dropout=0.2),
                      quick_data).history.rows

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_dropout_masks_drawn_ahead_are_those_drawn_step_by_step(quick_data, monkeypatch):
    """The engine draws many steps' dropout masks at once; drawn one step at a time (a chunk
    of one byte), every number is the same, the epoch's short last batch included."""

    def train():
        members = [Member(s, epochs=2, dropout=p) for s in (0, 1) for p in (0.0, 0.2, 0.5)]
        return train_stack(Shape(4, 10, True), members, quick_data)

    assert len(quick_data.train) % 32  # a short last batch
    ahead = train()
    monkeypatch.setattr(stack_module, "MASK_CHUNK", 1)
    one_by_one = train()
    for a, b in zip(ahead, one_by_one, strict=True):
        assert a.history.rows == b.history.rows
        for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                        strict=True):
            assert torch.equal(x, y)


def test_a_diverging_model_leaves_the_stack_and_the_others_go_on(quick_data):
    calm = Member(0, epochs=2)
    wild = Member(1, lr=1e3, epochs=2, l2=1e3)  # weights grow x2,000,001 a step
    calm_alone = _alone(SHALLOW, Member(0, epochs=2), quick_data)
    a, b = train_stack(SHALLOW, [calm, wild], quick_data)
    assert b.history.diverged and "Lower the learning rate (lr=1000.0)" in b.history.diverged
    assert len(b.history) == 0
    assert a.history.diverged is None and a.history.rows == calm_alone.history.rows
    with pytest.raises(ValueError, match="finished no epoch"):
        _ = b.history.last


def test_should_stop_interrupts_and_keeps_the_weights(quick_data):
    batches = []
    (t,) = train_stack(SHALLOW, [Member(0, epochs=3)], quick_data,
                       on_batch=lambda step, steps, k: batches.append((step, steps, k)),
                       should_stop=lambda: len(batches) >= 5)
    assert t.history.interrupted and len(t.history) == 0
    assert batches[0] == (1, 63, 1)  # 2,000 quick images in batches of 32
    assert not torch.equal(t.model[1].weight, _fresh_weights())


def _fresh_weights():
    torch.manual_seed(0)
    return build_mlp()[1].weight


def test_validation_rows_and_callbacks(quick_data):
    rows, held = torch.arange(200, 2000), torch.arange(200)
    epochs = []
    m = Member(0, epochs=4, early_stopping=EarlyStopping(1, 0.5, "val_loss"), train_rows=rows,
               validation_rows=held)
    (t,) = train_stack(SHALLOW, [m], quick_data, on_epoch=lambda j, h: epochs.append((j, len(h))))
    assert "val_loss" in t.history.rows[0] and t.history.stopped_early
    assert epochs == [(0, n) for n in range(1, len(t.history) + 1)]
    with pytest.raises(ValueError, match="as many rows"):
        train_stack(SHALLOW, [m, Member(1)], quick_data)


@pytest.mark.parametrize("bad, match", [
    (dict(lr=0), "learning rate"), (dict(lr=-0.1), "learning rate"),
    (dict(lr=float("nan")), "learning rate"), (dict(dropout=1.0), "dropout"),
    (dict(epochs=0), "epochs"), (dict(l1=-1e-3), "l1"), (dict(seed=1.5), "seed"),
    (dict(early_stopping=EarlyStopping(monitor="val_loss")), "validation_rows"),
])
def test_members_are_checked_before_training(bad, match):
    with pytest.raises(ValueError, match=match):
        Member(**({"seed": 0} | bad))
    with pytest.raises(ValueError, match="hidden width"):
        Shape(3, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_stack_trains(quick_data):
    (t,) = train_stack(SHALLOW, [Member(0, epochs=2)], quick_data, device="cuda")
    assert t.history.last["test_acc"] > 0.5


def test_early_stopping_against_best_or_previous():
    """The two readings of "decrease at least 0.01 in each epoch" on one hand-made curve."""
    losses = [1.0, 0.95, 0.96, 0.955, 0.942, 0.945, 0.95, 0.96]

    def stop_epoch(**kw):
        rule = EarlyStopping(patience=3, min_delta=0.01, **kw)
        return next(e for e, v in enumerate(losses, 1) if rule.step(v, e)), rule.best_epoch

    # Against the best (0.95 at epoch 2): no fall of 0.01 again, so it stops at epoch 5.
    assert stop_epoch(against="best") == (5, 2)
    # Against the previous epoch: 0.955 -> 0.942 (epoch 5) is a fall of 0.013 and resets the
    # count; epochs 6, 7, 8 rise, so it stops at epoch 8; the lowest loss was epoch 5's.
    assert stop_epoch(against="previous") == (8, 5)
    with pytest.raises(ValueError, match="against"):
        EarlyStopping(against="last")


def test_snapshots_hold_each_epochs_predictions_and_weights_and_change_no_number(quick_data):
    """``on_snapshot``: the test predictions and weights at each epoch's end, named as the
    user's model (dropout layers counted), the numbers bit for bit those without it."""
    shape, member = Shape(3, 10, True), Member(1, epochs=3, dropout=0.2)
    plain = _alone(shape, _fresh(member), quick_data)
    seen = []
    (t,) = train_stack(shape, [_fresh(member)], quick_data,
                       on_snapshot=lambda j, h, s: seen.append((j, len(h), s.epoch,
                                                                s.predictions, s.state_dict())))
    assert t.history.rows == plain.history.rows
    assert [(j, n, e) for j, n, e, *_ in seen] == [(0, 1, 1), (0, 2, 2), (0, 3, 3)]
    predictions, state = seen[-1][3], seen[-1][4]
    assert predictions.dtype == torch.uint8 and predictions.shape == (500,)
    hits = (predictions.long() == quick_data.test.labels).sum()
    assert int(hits) / 500 == t.history.last["test_acc"]
    assert list(state) == list(t.model.state_dict())  # "3.weight" is batch norm's, not dropout's
    for a, b in zip(state.values(), t.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(seen[0][4]["1.weight"], state["1.weight"])  # copies, not views
    with torch.no_grad():
        again = t.model(quick_data.test.images).argmax(1)
    assert (again == predictions.long()).float().mean() >= 0.99  # float rounding aside


def test_train_acc_is_exact_at_a_runs_last_epoch_and_a_fixed_sample_before(quick_data,
                                                                            monkeypatch):
    """With more training rows than ``TRAIN_SAMPLE`` (the full data; 500 of the quick 2,000
    here), the epochs before a run's last measure ``train_acc`` on evenly spaced rows, the last
    on all of them; the same alone or beside a mate that ends sooner."""
    monkeypatch.setattr(engine, "TRAIN_SAMPLE", 500)
    sample = engine.train_sample(torch.arange(len(quick_data.train)))
    assert len(sample) == 500 and len(set(sample.tolist())) == 500
    assert torch.bincount(quick_data.train.labels[sample]).min() >= 30  # every class in it
    member = Member(2, epochs=3, dropout=0.2)
    weights = []
    (t,) = train_stack(SHALLOW, [_fresh(member)], quick_data,
                       on_snapshot=lambda j, h, s: weights.append(s.state_dict()))
    model = build_mlp(3, 10, False, 0.2)
    for row, state in zip(t.history.rows, weights, strict=True):
        model.load_state_dict(state)
        rows = None if row["epoch"] == 3 else sample
        images, labels = quick_data.train.images, quick_data.train.labels
        if rows is not None:
            images, labels = images[rows], labels[rows]
        assert row["train_acc"] == evaluate(model, images, labels)["acc"], row["epoch"]
    mates = [_fresh(member), Member(5, epochs=1), Member(2, epochs=2, l2=1e-4)]
    together = train_stack(SHALLOW, mates, quick_data)
    assert together[0].history.rows == t.history.rows
    assert together[1].history.last["train_acc"] == _alone(SHALLOW, Member(5, epochs=1),
                                                           quick_data).history.last["train_acc"]


@pytest.mark.parametrize("shape", [SHALLOW, Shape(3, 50, False)])
def test_evaluation_is_the_same_alone_or_in_a_wide_stack(shape, quick_data):
    """On the CPU MKL computes a product of 256 rows or more by another kernel when it is
    narrow (150 columns or fewer), so the evaluation's products take at most EVAL_CHUNK = 128
    images: a model's loss is then the same alone as beside 19 others (the full data's test
    and training sets; the quick subset's 500 test images show it too)."""
    alone = Stack(shape, [Member(3)], torch.device("cpu"))
    wide = Stack(shape, [Member(s) for s in range(20)], torch.device("cpu"))
    with engine._one_thread(torch.device("cpu")):  # as train_stack computes
        for images in (quick_data.test.images, quick_data.train.images):
            images = images.flatten(1)
            for begin in range(0, len(images), EVAL_CHUNK):  # evaluate's products
                chunk = images[begin:begin + EVAL_CHUNK]
                assert torch.equal(alone.forward(chunk, training=False)[0],
                                   wide.forward(chunk, training=False)[3]), begin


def test_the_sign_of_the_l1_step_is_torch_sign_bit_for_bit(monkeypatch):
    """The plain-kernel path of ``_sign`` (scale and clamp) gives torch.sign's very bits."""
    w = torch.tensor([0.0, -0.0, 1e-45, -1e-45, 1e-38, -3.0, 2.5, 1e38, -float("inf"), 7e-12])
    w = torch.cat([w, torch.randn(1000)])
    expected = torch.sign(w)
    for capability in ("DEFAULT", "AVX2"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        out = torch.empty_like(w)
        _sign(w, out=out)
        assert torch.equal(out.view(torch.int32), expected.view(torch.int32)), capability
