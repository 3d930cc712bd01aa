"""Representations as the networks need them: matrices per group element plus the escnn object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..symmetry.core import Symmetry, _block_diag


@dataclass(frozen=True, eq=False)
class Rep:
    """A representation of the symmetry's group: ρ(g) for every element, and how to build it in escnn."""

    symmetry: Symmetry
    matrices: np.ndarray  # [|G|, d, d]
    parts: tuple  # ("obs",) | ("action",) | ("trivial", n) and sums thereof

    @property
    def dim(self) -> int:
        return self.matrices.shape[1]

    @property
    def order(self) -> int:
        return self.matrices.shape[0]

    def __add__(self, other: "Rep") -> "Rep":
        mats = np.stack([_block_diag([a, b]) for a, b in zip(self.matrices, other.matrices)])
        return Rep(self.symmetry, mats, self.parts + other.parts)

    def character(self) -> np.ndarray:
        return np.trace(self.matrices, axis1=1, axis2=2)

    def escnn_fields(self) -> list:
        """escnn representations, one per field, whose direct sum has the same matrices (same basis).

        Kept as a list of fields (not one direct sum) so that escnn groups equal fields together,
        which keeps its basis construction fast for wide inputs (660 sign fields for a portfolio)."""
        sym = self.symmetry
        G = sym.group
        reps = []
        for part in self.parts:
            if part[0] in ("obs", "action"):
                reps += sym.escnn_fields(part[0])
            else:
                reps += [G.trivial_representation] * part[1]
        return reps


def obs_rep(sym: Symmetry) -> Rep:
    return Rep(sym, sym.obs_matrices(), (("obs",),))


def action_rep(sym: Symmetry) -> Rep:
    return Rep(sym, sym.action_matrices(), (("action",),))


def trivial_rep(sym: Symmetry, n: int) -> Rep:
    return Rep(sym, np.broadcast_to(np.eye(n), (sym.order, n, n)).copy(), (("trivial", n),))


def hom_dim(a: Rep, b: Rep) -> int:
    """dim Hom_G(a, b) = <χ_a, χ_b>: the number of free parameters of an equivariant linear map."""
    return int(round(float(np.mean(a.character() * b.character()))))
