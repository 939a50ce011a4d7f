"""Small annotated models and functions the contract tests trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypedDict

import torch
from jaxtyping import Float, Int, jaxtyped
from jaxtyping import _typeguard as jaxtyping_typeguard
from torch import Tensor, nn

import shapetrace

if TYPE_CHECKING:  # imported for type checkers only: hints naming it cannot be resolved at runtime
    from torch import Tensor as CheckerTensor


class Pair(nn.Module):
    """x and y share B and N; the output adds D."""

    def forward(self, x: Float[Tensor, "B N D"], y: Float[Tensor, "B N"]) -> Float[Tensor, "B N D"]:
        return x * y[..., None]  # (B, N, D)


class Rank4(nn.Module):
    def forward(self, x: Float[Tensor, "B C H W"]) -> Float[Tensor, "B C*H*W"]:
        return x.flatten(1)  # (B, C*H*W)


class Flat(nn.Module):
    def forward(self, x: Float[Tensor, "B C H W"]) -> Float[Tensor, "B C*H*W"]:
        return x.flatten(2)  # (B, C, H*W): one dim too many


class Embed(nn.Module):
    """Token ids in, vectors out: a float input is a dtype violation."""

    def __init__(self, vocab: int = 10, dim: int = 4) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab, dim)

    def forward(self, ids: Int[Tensor, "B T"]) -> Float[Tensor, "B T 4"]:
        return self.table(ids)  # (B, T, 4)


class Score(nn.Module):
    """The silent broadcasting bug: (B, 1) + (B,) is (B, B), caught by the return hint."""

    def forward(self, logits: Float[Tensor, "B 1"], bias: Float[Tensor, " B"]) -> Float[Tensor, "B 1"]:
        return logits + bias  # (B, B), not (B, 1)


HeadsOutput = tuple[Float[Tensor, "B N"], dict[str, Float[Tensor, "B D"]]]


class Heads(nn.Module):
    """Returns a tuple and a dict; both are checked item by item."""

    def forward(self, x: Float[Tensor, "B N D"]) -> HeadsOutput:
        return x.sum(-1), {"pooled": x.mean(1), "first": x[:, 0]}


class HeadsWrongTuple(nn.Module):
    def forward(self, x: Float[Tensor, "B N D"]) -> HeadsOutput:
        return x.sum(-1)[:, :2], {"pooled": x.mean(1), "first": x[:, 0]}


class HeadsWrongDict(nn.Module):
    def forward(self, x: Float[Tensor, "B N D"]) -> HeadsOutput:
        return x.sum(-1), {"pooled": x.mean(1), "first": x[:, 0, :1]}


class Inner(nn.Module):
    """Its N is its own: a nested call has its own binding scope."""

    def forward(self, x: Float[Tensor, "B N"]) -> Float[Tensor, "B N"]:
        return x * 2  # (B, N)


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()

    def forward(self, x: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        flat = self.inner(x.flatten(1))  # (B, N*D): Inner binds its own N
        return flat.view_as(x)  # (B, N, D)


class Specs(nn.Module):
    """Fixed sizes, *batch, #-broadcastable, ..., expressions and a non-array argument."""

    def forward(
        self,
        x: Float[Tensor, "*batch C 3"],
        scale: Float[Tensor, "#C"],
        extra: Float[Tensor, " ..."],
        steps: int,
    ) -> Float[Tensor, "*batch C+1 3"]:
        y = x * scale[:, None] * steps  # (*batch, C, 3)
        return torch.cat([y, y[..., :1, :]], dim=-2)  # (*batch, C+1, 3)


class Strict(nn.Module):
    """Already checked by @jaxtyped with typeguard 2 (vendored by jaxtyping), which raises its
    own error: a trace sets that wrapper aside and checks once."""

    @jaxtyped(typechecker=jaxtyping_typeguard.typechecked)
    def forward(self, x: Float[Tensor, "B N"]) -> Float[Tensor, "B N"]:
        return x


class Outputs(NamedTuple):
    logits: Float[Tensor, "B K"]
    hidden: Float[Tensor, "B D"]


class Batch(TypedDict):
    image: Float[Tensor, "B C H W"]
    label: Int[Tensor, " B"]


class Classifier(nn.Module):
    """A NamedTuple out, a TypedDict in."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 5)

    def forward(self, batch: Batch) -> Outputs:
        hidden = batch["image"].mean((2, 3))  # (B, C)
        return Outputs(self.head(hidden), hidden)  # (B, K), (B, D)


class Keywords(nn.Module):
    def forward(
        self, x: Float[Tensor, "B N"], *, mask: Float[Tensor, "B N"] | None = None
    ) -> Float[Tensor, "B N"]:
        return x if mask is None else x * mask  # (B, N)


def pool(x: Float[Tensor, "B N D"]) -> Float[Tensor, "B D"]:
    """A plain function, opted in with contracts=[pool]."""
    return x.mean(1)  # (B, D)


def call_pool(x: torch.Tensor) -> torch.Tensor:
    return pool(x)


@shapetrace.contract
def center(x: Float[Tensor, "B N"], scale: float = 1.0) -> Float[Tensor, "B N"]:
    return (x - x.mean(-1, keepdim=True)) * scale  # (B, N)


class Helper:
    @staticmethod
    def double(x: Float[Tensor, "B N"]) -> Float[Tensor, "B N"]:
        return x * 2  # (B, N)

    def halve(self, x: Float[Tensor, "B N"]) -> Float[Tensor, "B N D"]:
        return x / 2  # (B, N): the annotation is wrong


class TypeCheckingOnly(nn.Module):
    """Its tensor hints name CheckerTensor, imported for type checkers only (see the top)."""

    def forward(self, x: Float[CheckerTensor, "B C"], n: int) -> Float[CheckerTensor, "B C"]:
        return x * n  # (B, C)
