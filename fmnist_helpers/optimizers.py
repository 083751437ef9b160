"""The engine's general path: a stack's gradients by autograd, and the optimizers' steps.

The hand-written path (:meth:`fmnist_helpers.stack.Stack.loss_and_gradients` and
:meth:`~fmnist_helpers.stack.Stack.sgd_step`) covers the study's recipe: ReLU and plain SGD.
Any other activation or optimizer takes this path: the same stacked tensors, the same forward
pass (batched products, each model's own dropout masks and batch-norm statistics), and autograd
for the backward pass; then the optimizer's update, written on the stacked tensors elementwise,
each model with its own learning rate, so that a model's numbers do not depend on its
stack-mates. The updates are PyTorch's own (``torch.optim.SGD``, with momentum 0.9, and
``torch.optim.Adam`` with its defaults), written out for a learning rate per model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from .stack import Stack

MOMENTUM = 0.9  # "momentum": torch.optim.SGD(momentum=0.9), no dampening, not Nesterov
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
LANES = 64  # floats: a whole number of the widest vector loop's blocks (2 x 16 on AVX-512)


def per_model_elementwise(fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for an elementwise ``fn`` whose vectorised and scalar kernels may differ in
    the last bit (``exp``, ``log``, ``tanh``, ``sigmoid``): each model's slice of ``x``
    ``(K, ...)`` padded to whole blocks of :data:`LANES`, so that every value goes through the
    vectorised loop, never its scalar tail, wherever its model sits in the stack."""
    flat = x.reshape(x.shape[0], -1)
    pad = -flat.shape[1] % LANES
    if pad == 0:
        return fn(x)
    return fn(F.pad(flat, (0, pad)))[:, :flat.shape[1]].reshape(x.shape)


def autograd_loss_and_gradients(stack: Stack, x: torch.Tensor, labels: torch.Tensor
                                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Each model's mean cross-entropy ``(K,)``, its logits, and its loss's gradients by
    autograd, keyed as ``stack.params`` (the first layer's as a whole ``(K, out, 784)``).

    The parameters enter as leaves that share the stacked tensors' memory; the loss
    differentiated is the sum of the K models' losses, whose gradient for a model's
    parameters is its own loss's (the others do not depend on them).
    """
    stored = stack.params
    leaves = {name: p.detach().requires_grad_() for name, p in stored.items()}
    stack.params = leaves
    try:
        with torch.enable_grad():
            logits = stack.forward(x, training=True)
            shifted = logits - logits.amax(2, keepdim=True).detach()  # the shift's gradient is 0
            total = per_model_elementwise(torch.exp, shifted).sum(2, keepdim=True)
            log_p = shifted - per_model_elementwise(torch.log, total)
            losses = -log_p.gather(2, labels.unsqueeze(2)).squeeze(2).mean(1)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
    finally:
        stack.params = stored
    return losses.detach(), logits.detach(), dict(zip(leaves, grads, strict=True))


class StackedOptimizer:
    """One optimizer per model, on the stacked tensors: ``"sgd"``, ``"momentum"`` or ``"adam"``.

    Its state (momentum buffers, Adam's moments) is stacked like the parameters, one slice per
    model; :meth:`keep` follows the stack when models leave. L1/L2 penalties enter the gradient
    (``l1 sign(w) + 2 l2 w`` on the weight matrices, ``l2_first`` on the first), as when the
    penalty is added to the loss of a plain PyTorch loop.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.state: dict[str, tuple[torch.Tensor, ...]] = {}
        self.steps = 0

    def step(self, stack: Stack, grads: dict[str, torch.Tensor]) -> None:
        """Update ``stack.params`` in place from ``grads`` (under ``torch.no_grad``)."""
        self.steps += 1
        if stack.any_penalty:
            grads = dict(grads)
            for n, i in enumerate(stack.linear):
                name = f"{i}.weight"
                w = stack.params[name]
                l2 = stack.l2 + stack.l2_first if n == 0 else stack.l2
                grads[name] = (grads[name] + stack._per_model(stack.l1, name) * torch.sign(w)
                               + stack._per_model(2 * l2, name) * w)
        if self.kind == "adam":
            b1, b2 = ADAM_BETAS
            correction1, correction2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
            # lr / (1 - b1^t) in double, as torch.optim.Adam forms its step size, per model
            step = torch.tensor([-m.lr / correction1 for m in stack.members],
                                device=stack.device)
        for name, w in stack.params.items():
            g = grads[name]
            if self.kind == "sgd":
                w.addcmul_(g, stack._per_model(stack.minus_lr, name))
            elif self.kind == "momentum":
                if name not in self.state:
                    self.state[name] = (g.clone(),)
                else:
                    self.state[name][0].mul_(MOMENTUM).add_(g)
                w.addcmul_(self.state[name][0], stack._per_model(stack.minus_lr, name))
            else:
                if name not in self.state:
                    self.state[name] = (torch.zeros_like(w), torch.zeros_like(w))
                mean, square = self.state[name]
                mean.lerp_(g, 1 - b1)
                square.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (square.sqrt() / math.sqrt(correction2)).add_(ADAM_EPS)
                w.add_(mean / denom * stack._per_model(step, name))

    def keep(self, index: torch.Tensor) -> None:
        """Keep the state of the models at ``index`` only (the others left the stack)."""
        self.state = {name: tuple(t.index_select(0, index) for t in state)
                      for name, state in self.state.items()}
