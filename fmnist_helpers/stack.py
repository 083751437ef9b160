"""K models of one shape as stacked tensors: forward pass, written-out backward pass, SGD step.

The arithmetic of :func:`fmnist_helpers.engine.train_stack`, which owns the loop (batches,
epochs, evaluation, early stopping). Every matrix product here is batched per model, so that a
model's numbers are the same alone or in any stack (the engine's docstring says why and what
it costs). A training step (:meth:`Stack.step`) takes one of two paths: the written-out
backward pass and SGD step, for the study's recipe (ReLU, plain SGD), or the general path of
:mod:`fmnist_helpers.optimizers` (autograd over the same tensors, any activation, SGD with or
without momentum, Adam).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.func import stack_module_state
from torch.nn import functional as F

from .models import build_mlp
from .optimizers import StackedOptimizer, autograd_loss_and_gradients, per_model_elementwise

if TYPE_CHECKING:
    from .engine import Member, Shape

STUDY_EVAL_BATCH = 32  # the study averaged per-batch accuracies over test batches of 32
EVAL_CHUNK = 128  # images per evaluation product: at most 128, so that the numbers never depend
# on K (MKL computes a product of 256 rows or more by another kernel when it is narrow)
MASK_CHUNK = 1 << 20  # bytes of dropout masks drawn at once: 1 MB was faster than 8 or 1/8
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # nn.BatchNorm1d's defaults
ACTIVATE = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "leaky_relu": F.leaky_relu}  # and
# ReLU, in place (the written-out backward pass needs only its output)


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image cross-entropy ``(K, B)`` of logits ``(K, B, 10)``, each row on its own.

    Computed on a copy laid out ``(K, 10, B)``: PyTorch's CPU kernels reduce over 10 classes
    along the last dimension 5 to 7 times slower than across it (``F.cross_entropy`` took a
    third of an evaluation).
    """
    by_class = logits.transpose(1, 2).contiguous()
    shifted = by_class - by_class.amax(1, keepdim=True)
    picked = shifted.gather(1, labels.unsqueeze(1)).squeeze(1)
    total = per_model_elementwise(torch.exp, shifted).sum(1)
    return per_model_elementwise(torch.log, total) - picked


class Stack:
    """K models of one shape as stacked tensors: forward pass, evaluation, training step.

    ``written``: train by the written-out backward pass and SGD step (ReLU and plain SGD only);
    otherwise by autograd and :class:`~fmnist_helpers.optimizers.StackedOptimizer`.
    """

    def __init__(self, shape: Shape, members: list[Member], device: torch.device,
                 written: bool = True):
        if written and (shape.activation != "relu" or shape.optimizer != "sgd"):
            raise ValueError(f"the written-out backward pass covers ReLU and plain SGD only, "
                             f"not activation={shape.activation!r}, optimizer="
                             f"{shape.optimizer!r}: train it on the autograd path")
        self.shape, self.members, self.device = shape, list(members), device
        self.written = written
        self.optimizer = None if written else StackedOptimizer(shape.optimizer)
        self.models, generators = [], []
        for m in members:
            torch.manual_seed(m.seed)  # initialisation, as build_mlp after manual_seed(seed)
            self.models.append(build_mlp(shape.n_linear, shape.hidden, shape.batch_norm,
                                         activation=shape.activation))
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
        self.any_penalty = any(m.penalised for m in self.members)
        self._penalty = self._penalty_factors() if self.any_penalty and self.written else {}
        self.images = torch.empty(0, device=self.device)  # the batch buffer of gather()
        self.keep_p = 1.0 - column("dropout")
        self.any_dropout = any(m.dropout > 0 for m in self.members)
        # runs of consecutive models that see the same batches: same seed, same training rows
        self.groups, start = [], 0
        for k in range(1, len(self.members) + 1):
            if k == len(self.members) or not _same_batches(self.members[start], self.members[k]):
                self.groups.append((start, k))
                start = k

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
                # (K, out, 784) @ (K, 784, B): 2 to 3 times faster than x @ W.T for 10 outputs
                y = torch.cat([torch.baddbmm(b[models].unsqueeze(2), w[models],
                                             images.transpose(1, 2))
                               for models, images in self._blocks(x)])
                x = y.transpose(1, 2).contiguous()  # (K, B, out), as every other layer's output
            else:
                x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if n == len(self.linear) - 1:
                return x
            if self.shape.activation == "relu":
                x = layer["relu"] = x.relu_()  # the backward pass needs only the output
            else:
                x = per_model_elementwise(ACTIVATE[self.shape.activation], x)
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

    def _blocks(self, x: torch.Tensor) -> list[tuple[slice, torch.Tensor]]:
        """The first layer's inputs, as ``(models, their images (k, B, 784))`` views: from one
        batch per group of models alike ``(G, B, 784)`` or one batch all share ``(B, 784)``.

        One block for the whole stack where a view covers it; else one per group, each group's
        batch expanded over its models, never copied (a copy of the K batches cost a fifth of
        a shallow stack's step). The products are per model either way, so each block gives
        what the model alone gives.
        """
        if x.dim() == 2:
            return [(slice(None), x.expand(len(self), *x.shape))]
        if len(self.groups) == len(self):
            return [(slice(None), x)]
        return [(slice(a, b), x[g].expand(b - a, *x.shape[1:]))
                for g, (a, b) in enumerate(self.groups)]

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
        # the running statistics are buffers, outside autograd's graph on the general path
        mean_.mul_(1 - BN_MOMENTUM).add_(mean.squeeze(1).detach(), alpha=BN_MOMENTUM)
        var_.mul_(1 - BN_MOMENTUM).add_(var.squeeze(1).detach() * (b / max(b - 1, 1)),
                                        alpha=BN_MOMENTUM)
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

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step on a batch: each model's mean loss ``(K,)`` and its logits, the
        weights updated, by the written-out path or the general one."""
        if self.written:
            losses, logits, grads = self.loss_and_gradients(x, labels)
            self.sgd_step(grads)
        else:
            losses, logits, grads = autograd_loss_and_gradients(self, x, labels)
            self.optimizer.step(self, grads)
        return losses, logits

    def loss_and_gradients(self, x: torch.Tensor, labels: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Each model's mean cross-entropy ``(K,)``, its logits, and its loss's gradients.

        The backward pass is written out (the textbook one for linear, ReLU, batch norm and
        dropout), for the study's recipe, because it is faster than the general path's
        autograd (the engine's docstring gives the measurement); a test checks it against
        autograd. The first layer's weight gradient, ``x.T @ g`` and the
        biggest tensor of the step, is handed back as its two factors ``(x, g)``:
        :meth:`sgd_step` folds the product into the update (:meth:`first_layer_gradient`
        forms it).
        """
        tape: list[dict] = []
        logits = self.forward(x, training=True, tape=tape)
        # softmax and its log, written out: torch.log_softmax over 10 classes, then exp, took
        # 2 to 3 times as long at these sizes
        shifted = logits - logits.amax(2, keepdim=True)
        exp = per_model_elementwise(torch.exp, shifted)  # (see per_model_elementwise)
        total = exp.sum(2, keepdim=True)
        log_p = shifted - per_model_elementwise(torch.log, total)
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
        return torch.cat([torch.bmm(g[models].transpose(1, 2), images)
                          for models, images in self._blocks(x)])

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
        step = (g * self.minus_lr).transpose(1, 2)
        for models, images in self._blocks(x):
            self.params[self.first][models].baddbmm_(step[models], images)
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
        if self.optimizer is not None:
            self.optimizer.keep(index)
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


def _same_batches(a: Member, b: Member) -> bool:
    """Whether two members draw the same batches: the same seed and the same training rows."""
    if a.seed != b.seed or (a.train_rows is None) != (b.train_rows is None):
        return False
    return a.train_rows is None or torch.equal(a.train_rows, b.train_rows)
