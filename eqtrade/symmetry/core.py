"""The Symmetry protocol: a finite group (an escnn group object) and how it acts on
observations and actions. Plain data: environments declare one, networks are built from one.

A representation is named by a string, per component of the flattened observation (or action):

    "trivial"      g·x = x
    "sign"         the reflection character: -1 on reflections (C2's flip, D_N's flips,
                   C_N's generator for even N), +1 otherwise
    "regular"      |G| components permuted by the group (escnn's regular representation)
    "irrep:K"      escnn irrep with id K ("irrep:1" = rotation by 2πk/N on R² for C_N,
                   "irrep:1,1" = the 2-D irrep of D_N)

A discrete action set is acted on by permutations, one per group element (`action_perm`).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: the network families, the three ways a network treats a Symmetry: plain (ignores it), exact
#: (equivariant by construction), relaxed (starts exact, may break it where the data asks)
FAMILIES = ("plain", "exact", "relaxed")


def import_escnn(name: str = "escnn"):
    """Import an escnn module, quietly (py3nj is optional) and deterministically: escnn solves for
    its bases with scikit-learn's *randomized* SVD whenever scikit-learn is importable (it is:
    skfolio needs it), which makes the bases differ from run to run and fails on scikit-learn >=
    1.6 (it passes an np.matrix); eqtrade makes escnn use its exact SVD (scipy), as on a machine
    without scikit-learn."""
    import importlib

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        mod = importlib.import_module(name)
        numerical = importlib.import_module("escnn.group._numerical")
    numerical.randomized_svd = None  # escnn.group._numerical.null falls back to scipy.linalg.svd
    return mod


def _escnn_group(kind: str, n: int):
    egroup = import_escnn("escnn.group")
    if kind == "C":
        return egroup.cyclic_group(n)
    if kind == "D":
        return egroup.dihedral_group(n)
    raise ValueError(f"group kind must be 'C' or 'D', got {kind!r}")


@dataclass(frozen=True)
class AssetAxis:
    """Permutations of N exchangeable assets, described by weight sharing instead of an
    enumeration of S_N (N! elements): which components belong to which asset.

    The flat observation is a sequence of blocks, each [rows, N] row-major with the asset index
    last (a time-major window of N series is one block of W rows; the N weights held are one
    block of 1 row); the action is blocks of the same kind (`action_rows`, normally one row: one
    number per asset). A permutation π acts by moving asset i's components to asset π(i)'s place
    in every block. Networks equivariant to it share one set of weights across assets (the
    per-asset head of eqtrade.nn.asset); their cost is linear in N.
    """

    n_assets: int
    obs_rows: tuple[int, ...]  # rows of each observation block, in order
    action_rows: tuple[int, ...] = (1,)
    #: the assets' names in component order (tickers), where the env knows them: per-asset
    #: embeddings are keyed by them, so that a network maps onto another universe by name
    names: tuple[str, ...] | None = field(default=None, compare=False)
    #: what each observation block holds, in order: "returns" (the time-major window), "horizons"
    #: (per-asset returns over longer horizons), "levels" (per-asset and market volatility levels,
    #: invariant under the reflection), "weights" (the book); None: ("returns", "weights")
    blocks: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.blocks is None:  # one spelling of the default layout, so that equal axes compare equal
            object.__setattr__(self, "blocks", ("returns", "weights") if len(self.obs_rows) == 2
                               else ("returns",) * len(self.obs_rows))
        kinds = self.block_kinds
        if len(kinds) != len(self.obs_rows) or any(k not in BLOCK_KINDS for k in kinds):
            raise ValueError(f"asset axis blocks {kinds} do not name its {len(self.obs_rows)} observation blocks "
                             f"with {', '.join(BLOCK_KINDS)}")

    @property
    def block_kinds(self) -> tuple[str, ...]:
        """What each observation block holds (see `blocks`)."""
        if self.blocks is not None:
            return tuple(self.blocks)
        return ("returns", "weights") if len(self.obs_rows) == 2 else ("returns",) * len(self.obs_rows)

    def rows_of(self, kind: str) -> int:
        """Rows of the blocks holding `kind` (0 if none)."""
        return sum(r for r, k in zip(self.obs_rows, self.block_kinds) if k == kind)

    @property
    def obs_dim(self) -> int:
        return sum(self.obs_rows) * self.n_assets

    def obs_asset_index(self) -> np.ndarray:
        """For every observation component, the asset it belongs to (the sharing pattern)."""
        return np.tile(np.arange(self.n_assets), sum(self.obs_rows))

    def _permute(self, x, perm, rows: tuple[int, ...]):
        perm = np.asarray(perm)
        if sorted(perm.tolist()) != list(range(self.n_assets)):
            raise ValueError(f"not a permutation of {self.n_assets} assets: {perm.tolist()}")
        # component (row r, asset i) moves to (row r, asset perm[i]): new[..., perm[i]] = old[..., i]
        inv = np.argsort(perm)
        n = sum(rows) * self.n_assets
        if x.shape[-1] != n:
            raise ValueError(f"expected {n} components ({sum(rows)} rows x {self.n_assets} assets), got {x.shape[-1]}")
        shaped = x.reshape(*x.shape[:-1], sum(rows), self.n_assets)
        if hasattr(x, "detach"):
            import torch

            out = shaped[..., torch.as_tensor(inv, device=x.device)]
        else:
            out = shaped[..., inv]
        return out.reshape(x.shape)

    def permute_obs(self, obs, perm):
        """π·obs for a batch [..., d_obs] (numpy or torch): asset i's components move to asset perm[i]."""
        return self._permute(obs, perm, self.obs_rows)

    def permute_action(self, action, perm):
        """π·action for a batch [..., d_act]."""
        return self._permute(action, perm, self.action_rows)

    def random_permutation(self, rng) -> np.ndarray:
        """A uniformly random permutation of the assets (rng: numpy Generator)."""
        return rng.permutation(self.n_assets)


#: the kinds of per-asset observation blocks (`AssetAxis.blocks`)
BLOCK_KINDS = ("returns", "horizons", "levels", "weights")
#: the families of the return-scale axis R -> c·R (`ScaleAxis`)
SCALE_FAMILIES = ("exact", "relaxed", "plain")


@dataclass(frozen=True)
class ScaleAxis:
    """The return-scale transformation R -> c·R (c > 0) on a trading observation, and how a
    network treats it: a continuous group, declared by how it acts (not an escnn group).

    Under R -> c·R the components `shift` move by log c (log volatility levels), the components
    `multiply` are multiplied by c (raw returns over a constant), and every other component is
    unchanged (returns over their own trailing volatility, weights). `feature` gives, for each
    `shift` component, which of `n_features` level features it is (an asset's own 21-day level
    is one feature for all assets: networks share weights across assets).

    family: "exact" (the observation is invariant: no levels, no raw returns), "relaxed"
    (invariant returns plus levels, which networks read through weights that start at zero and are
    pulled back to zero: the network starts exactly invariant), "plain" (raw returns and levels,
    read freely)."""

    family: str = "exact"
    shift: tuple[int, ...] = ()
    feature: tuple[int, ...] = ()
    n_features: int = 0
    multiply: tuple[int, ...] = ()

    def __post_init__(self):
        if self.family not in SCALE_FAMILIES:
            raise ValueError(f"scale family must be one of {', '.join(SCALE_FAMILIES)}, got {self.family!r}")
        if len(self.feature) != len(self.shift) or any(not 0 <= f < self.n_features for f in self.feature):
            raise ValueError(f"scale axis: {len(self.shift)} shifted components need a feature id in 0..{self.n_features - 1} each")
        if self.family == "exact" and (self.shift or self.multiply):
            raise ValueError("an exact scale axis has no components that move under R -> c·R")

    def transform_obs(self, obs, c: float):
        """The observation batch [..., d_obs] (numpy or torch) of the market with returns c·R."""
        import math

        out = obs.clone() if hasattr(obs, "detach") else np.array(obs, dtype=np.float64, copy=True)
        if self.shift:
            out[..., list(self.shift)] += math.log(c)
        if self.multiply:
            out[..., list(self.multiply)] *= c
        return out


@dataclass(frozen=True)
class Symmetry:
    """A finite group G and its representations on the flattened observation and on the action.

    obs_reps / action_reps: sequences of (representation name, multiplicity), in component order.
    action_perm: for a discrete action set, one permutation of the actions per group element
    (in the order of `elements`): element g sends action a to action_perm[g][a].
    """

    name: str
    group_kind: str  # "C" (cyclic) or "D" (dihedral)
    group_order: int  # N of C_N / D_N
    obs_reps: tuple[tuple[str, int], ...]
    action_reps: tuple[tuple[str, int], ...] = ()
    action_perm: tuple[tuple[int, ...], ...] | None = None
    description: str = ""
    exact: bool = field(default=False, compare=False)  # True where the task is known to be exactly symmetric
    #: permutations of exchangeable assets, acting besides G (they commute with it: G acts on each
    #: asset's components alike); None where the task has no asset axis
    assets: AssetAxis | None = None

    # -- the group ------------------------------------------------------------------------------
    @property
    def group(self):
        """The escnn group object (cyclic_group(N) or dihedral_group(N))."""
        return _escnn_group(self.group_kind, self.group_order)

    @property
    def elements(self) -> list:
        """Group elements in a fixed order; index 0 is the identity."""
        return list(self.group.elements)

    @property
    def order(self) -> int:
        """|G|."""
        return self.group.order()

    @property
    def obs_dim(self) -> int:
        return sum(_rep_dim(self.group, r) * m for r, m in self.obs_reps)

    @property
    def action_dim(self) -> int:
        if self.action_perm is not None:
            return len(self.action_perm[0])
        return sum(_rep_dim(self.group, r) * m for r, m in self.action_reps)

    @property
    def discrete(self) -> bool:
        return self.action_perm is not None

    # -- matrices ---------------------------------------------------------------------------------
    def obs_matrices(self) -> np.ndarray:
        """ρ_obs(g) for every g: array [|G|, d_obs, d_obs]."""
        return _matrices(self, "obs")

    def action_matrices(self) -> np.ndarray:
        """ρ_act(g) for every g: [|G|, d_act, d_act]; permutation matrices for a discrete set."""
        return _matrices(self, "action")

    def mult_table(self) -> np.ndarray:
        """table[i, j] = index of elements[i]⁻¹ · elements[j]."""
        return _mult_table(self.group_kind, self.group_order)

    # -- acting ---------------------------------------------------------------------------------
    def transform_obs(self, obs, g: int):
        """g·obs for a batch [..., d_obs] (numpy or torch); g is an element index."""
        return _apply(self.obs_matrices()[g], obs)

    def transform_action(self, action, g: int):
        """g·action: matrix action for continuous actions, permuted indices for discrete ones."""
        if self.discrete:
            perm = np.asarray(self.action_perm[g])
            if hasattr(action, "detach"):
                import torch

                return torch.as_tensor(perm, device=action.device)[action]
            return perm[np.asarray(action)]
        return _apply(self.action_matrices()[g], action)

    def transform_qvalues(self, q, g: int):
        """g·Q for a batch of Q-vectors [..., n_actions]: (g·Q)[perm[a]] = Q[a]."""
        return _apply(self.action_matrices()[g], q)

    def transform(self, obs, action, g: int, perm=None):
        """(g·π·obs, g·π·action): an element of G x S_N, the permutation applied first (numpy or torch)."""
        if perm is not None:
            if self.assets is None:
                raise ValueError(f"{self.name} has no asset axis to permute")
            obs, action = self.assets.permute_obs(obs, perm), self.assets.permute_action(action, perm)
        return self.transform_obs(obs, g), self.transform_action(action, g)

    def escnn_fields(self, which: str = "obs") -> list:
        """The observation ("obs") or action ("action") representation as a list of escnn
        representations, one per field; their direct sum has exactly `obs_matrices()`."""
        return list(_escnn_fields(self, which))

    def __str__(self) -> str:
        g = f"{self.group_kind}{self.group_order}"
        perm = f" x S_{self.assets.n_assets} (assets)" if self.assets else ""
        return f"Symmetry({self.name}: G={g}{perm}, obs={list(self.obs_reps)}, action={list(self.action_reps) or 'perm'})"


# -- helpers -------------------------------------------------------------------------------------
def _sign_irrep_id(G):
    from escnn.group import CyclicGroup, DihedralGroup

    if isinstance(G, DihedralGroup):
        return (1, 0)
    if isinstance(G, CyclicGroup) and G.order() % 2 == 0:
        return (G.order() // 2,)
    raise ValueError(f"group {G} has no sign (reflection) character")


def _parse_id(text: str) -> tuple:
    return tuple(int(p) for p in text.split(","))


def _irrep(G, name: str):
    if name == "trivial":
        return G.trivial_representation
    if name == "sign":
        return G.irrep(*_sign_irrep_id(G))
    if name == "regular":
        return G.regular_representation
    if name.startswith("irrep:"):
        return G.irrep(*_parse_id(name[len("irrep:"):]))
    raise ValueError(f"unknown representation {name!r}: use trivial, sign, regular or irrep:K")


def _rep_dim(G, name: str) -> int:
    return _irrep(G, name).size


def _apply(mat: np.ndarray, x):
    if hasattr(x, "detach"):
        import torch

        m = torch.as_tensor(mat, dtype=x.dtype, device=x.device)
        return x @ m.T
    return np.asarray(x) @ mat.T


@functools.lru_cache(maxsize=64)
def _mult_table(kind: str, n: int) -> np.ndarray:
    els = list(_escnn_group(kind, n).elements)
    index = {e: i for i, e in enumerate(els)}
    return np.array([[index[(~a) @ b] for b in els] for a in els], dtype=np.int64)


def block_diag(blocks: Sequence[np.ndarray]) -> np.ndarray:
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    i = 0
    for b in blocks:
        k = b.shape[0]
        out[i : i + k, i : i + k] = b
        i += k
    return out


@functools.lru_cache(maxsize=256)
def _matrices(sym: Symmetry, which: str) -> np.ndarray:
    G = sym.group
    els = list(G.elements)
    if which == "action" and sym.discrete:
        n = len(sym.action_perm[0])
        mats = np.zeros((len(els), n, n))
        for gi, perm in enumerate(sym.action_perm):
            mats[gi, list(perm), np.arange(n)] = 1.0  # e_a -> e_perm[a]
        return mats
    reps = sym.obs_reps if which == "obs" else sym.action_reps
    out = []
    for g in els:
        blocks = []
        for name, mult in reps:
            m = np.asarray(_irrep(G, name)(g), dtype=float)
            blocks += [m] * mult
        out.append(block_diag(blocks) if blocks else np.zeros((0, 0)))
    mats = np.stack(out)
    mats[np.abs(mats) < 1e-9] = 0.0  # escnn's regular representation carries 1e-16 round-off
    mats[np.abs(mats - 1) < 1e-9] = 1.0
    mats[np.abs(mats + 1) < 1e-9] = -1.0
    return mats


@functools.lru_cache(maxsize=256)
def _escnn_fields(sym: Symmetry, which: str) -> tuple:
    from escnn.group.representation import build_from_discrete_group_representation

    G = sym.group
    if which == "action" and sym.discrete:
        mats = _matrices(sym, "action")
        return (build_from_discrete_group_representation(
            {g: mats[i] for i, g in enumerate(G.elements)}, f"{sym.name}-actions", G, ["pointwise"]),)
    reps = sym.obs_reps if which == "obs" else sym.action_reps
    return tuple(_irrep(G, name) for name, mult in reps for _ in range(mult))


def check_representation(sym: Symmetry, atol: float = 1e-8) -> None:
    """Raise if the matrices are not a group homomorphism (ρ(a)ρ(b) = ρ(ab)) or not orthogonal."""
    els = sym.elements
    index = {e: i for i, e in enumerate(els)}
    for which in ("obs", "action"):
        mats = _matrices(sym, which)
        for i, a in enumerate(els):
            if not np.allclose(mats[i] @ mats[i].T, np.eye(mats.shape[1]), atol=atol):
                raise ValueError(f"{sym.name}: ρ_{which}({a}) is not orthogonal")
            for j, b in enumerate(els):
                k = index[a @ b]
                if not np.allclose(mats[i] @ mats[j], mats[k], atol=atol):
                    raise ValueError(f"{sym.name}: ρ_{which}({a})ρ_{which}({b}) != ρ_{which}({a @ b})")
