"""One small network shared by every asset of a portfolio (the per-asset backbone).

A portfolio observation is [W x N returns (time-major), N weights held]. The shared head reads
one asset's own window and its weight (and, for Q(s, a), its action) and gives that asset's
output: the actor's mean and log-std for that asset, or that asset's contribution to a critic,
summed over assets. The same weights for every asset make the networks exactly equivariant to
permuting assets and independent of N in size; daily returns are mostly noise, so this structure
(little capacity per asset, shared across assets) is what generalises.

Two additions on the asset axis (options of the `per_asset` encoder):
- context="mean": every asset also reads the market, the mean over assets of the per-asset
  inputs (the equal-weighted normalised return window and the net exposure Σw): a
  permutation-invariant pooling (DeepSets), so one asset's decision can depend on the others
  while the network stays exactly equivariant to permuting assets, at a cost linear in N.
- assets="relaxed": every asset also reads its own learned embedding e_i (`embed_dim` numbers,
  keyed by ticker), all zero at the start, so the network starts exactly permutation-equivariant;
  `regularizer()` adds Σ_k Var_i e_ik (zero exactly when every asset has the same embedding),
  the analogue of the relaxed group convolution's Var_h w(h). An asset the network has not seen
  (acting on another universe) gets the mean embedding: the shared weights.

The reflection families act on top, per asset: the head is plain, exact or relaxed with respect
to the single-asset reflection (returns, weight and action negate), so the whole network is
equivariant to the portfolio reflection exactly when the head is.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..symmetry import Symmetry
from . import mlp
from .exact import EscnnMLP
from .mlp import PlainMLP, matched_channels
from .relaxed import RelaxedMLP
from .reps import action_rep, obs_rep, sub_state, trivial_rep


class AssetEmbedding(nn.Module):
    """Per-asset relaxed embeddings [N, k], keyed by ticker (zero at the start: every asset alike).

    Loading a state saved for another universe maps embeddings by ticker; an asset not in the
    saved universe gets the mean of the saved embeddings (the point the regulariser pulls to)."""

    def __init__(self, tickers: Sequence[str], dim: int):
        super().__init__()
        self.tickers = [str(t) for t in tickers]
        self.weight = nn.Parameter(torch.zeros(len(self.tickers), int(dim)))

    def forward(self) -> torch.Tensor:
        return self.weight

    def get_extra_state(self):
        return {"tickers": list(self.tickers)}

    def set_extra_state(self, state) -> None:
        pass  # the mapping is done in _load_from_state_dict; this module keeps its own tickers

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key, extra = prefix + "weight", prefix + "_extra_state"
        if key in state_dict and extra in state_dict:
            saved, names = state_dict[key], list(state_dict[extra]["tickers"])
            if names != self.tickers:
                index = {t: i for i, t in enumerate(names)}
                mean = saved.mean(0)
                state_dict[key] = torch.stack([saved[index[t]] if t in index else mean for t in self.tickers]) \
                    if self.tickers else saved[:0]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def regularizer(self) -> torch.Tensor:
        """Σ_k Var_i e_ik: zero exactly when every asset has the same embedding."""
        return self.weight.var(0, unbiased=False).sum() if len(self.tickers) > 1 else self.weight.sum() * 0


def _merged(reps) -> tuple[tuple[str, int], ...]:
    """(kind, count) pairs with zero counts dropped and neighbours of one kind merged."""
    out: list[tuple[str, int]] = []
    for kind, n in reps:
        if n:
            out[-1:] = [(kind, out[-1][1] + n)] if out and out[-1][0] == kind else out[-1:] + [(kind, n)]
    return tuple(out)


class AssetwiseHead(nn.Module):
    """[B, (W + H + V)·N + N (+ N actions)] -> per-asset outputs of one shared head.

    The head reads, per asset, [its W returns, its H horizon returns, its V volatility levels, N x
    its weight, (the market's mean of those: context="mean"), (its action), (its embedding:
    assets="relaxed")]; H and V are 0 without `eqtrade.envs.wrappers.MarketFeatures`.
    outputs="actor": [B, 2N] = (N means, N raw log-stds), the layout `Actor` splits;
    outputs="value": [B, 1], the sum over assets of the head's scalar (a critic V(s) or Q(s, a)).
    """

    def __init__(self, head: nn.Module, window: int, n_assets: int, with_action: bool, outputs: str,
                 context: str = "none", embedding: AssetEmbedding | None = None, horizons: int = 0, levels: int = 0,
                 cash: bool = False, relaxed_levels: bool = False, level_gain: float = 1.0):
        super().__init__()
        if outputs not in ("actor", "value"):
            raise ValueError(f"outputs must be 'actor' or 'value', got {outputs!r}")
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
        self.head, self.window, self.n_assets = head, int(window), int(n_assets)
        self.with_action, self.outputs, self.context = with_action, outputs, context
        self.embedding = embedding
        self.rows = int(window) + int(horizons) + int(levels) + 1  # per asset: window, horizons, levels, weight
        # long-only books: one more action, the cash's (the env's last), invariant to permuting assets
        self.cash = bool(cash)
        # a relaxed scale axis: the head's weights on the volatility levels (its own rows and, with
        # context, the market's mean of them) are the relaxed weights: zero at the start (exactly
        # invariant to the volatility level), pulled back by regularizer()
        first = int(window) + int(horizons)
        own = list(range(first, first + int(levels)))
        self.level_columns = (own + ([self.rows + c for c in own] if context == "mean" else [])) if relaxed_levels else []
        if not float(level_gain) > 0:
            raise ValueError(f"level_gain must be a positive number, got {level_gain!r}")
        if self.level_columns:
            head.zero_input_columns(self.level_columns)
        # each input row's factor on the way in: the weight row N·w (see per_asset_inputs) and the
        # levels x level_gain (under Adam, whose steps do not depend on the gradient's scale, a
        # level weight w acts as level_gain·w: the levels' weights move level_gain times faster,
        # and the regulariser on w² pulls level_gain² times more weakly)
        self.level_gain = float(level_gain)
        self._row_factors = [1.0] * self.rows
        self._row_factors[-1] = float(n_assets)
        for r in own:
            self._row_factors[r] = self.level_gain
        self._row_scale_cache: dict = {}

    def _row_scale(self, like: torch.Tensor) -> torch.Tensor:
        """The [F] input-row factors on like's device and dtype (built once per device and dtype)."""
        key = (like.device, like.dtype)
        if key not in self._row_scale_cache:
            self._row_scale_cache[key] = torch.tensor(self._row_factors, dtype=like.dtype, device=like.device)
        return self._row_scale_cache[key]

    def _check(self, x: torch.Tensor, action: torch.Tensor | None = None, xlead: int = 0) -> None:
        F, N = self.rows, self.n_assets
        shape = list(x.shape[xlead:])
        if len(shape) == 3:
            if tuple(shape[1:]) != (F, N):
                raise ValueError(f"per-asset network for {N} assets x {F} rows (window {self.window}) expects "
                                 f"rows [B, {F}, {N}], got {shape}")
        else:
            expected = F * N + ((N + self.cash) if self.with_action and action is None else 0)
            if shape[-1] != expected:
                raise ValueError(f"per-asset network for {N} assets x {F} rows (window {self.window}) expects "
                                 f"{expected} inputs, got {shape[-1]}")
        if action is not None and action.shape[-1] != N + self.cash:
            raise ValueError(f"per-asset network for {N} assets expects {N + self.cash} actions, got {action.shape[-1]}")

    def per_asset_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """[B, (W + H + V)·N + N (+ N)] -> [B, N, F]: each asset's head input (see the class docstring)."""
        B, F, N = x.shape[0], self.rows, self.n_assets
        self._check(x)
        own = x[:, : F * N].reshape(B, F, N).transpose(1, 2)
        # weights are ~1/N each (gross <= 1): shown to the head as N·w, on the scale of the
        # normalised returns and of the action, so that the position is not drowned out
        # (and the levels x level_gain: _row_scale)
        own = own * self._row_scale(own)
        parts = [own]
        if self.context == "mean":
            parts.append(own.mean(1, keepdim=True).expand(B, N, F))
        if self.with_action:
            parts.append(x[:, F * N : F * N + N, None])
            if self.cash:  # every asset also reads the cash action
                parts.append(x[:, F * N + N :].expand(B, N)[..., None])
        if self.embedding is not None:
            parts.append(self.embedding().unsqueeze(0).expand(B, N, -1))
        return torch.cat(parts, dim=2)

    def forward(self, x: torch.Tensor, action: torch.Tensor | None = None,
                held: torch.Tensor | None = None) -> torch.Tensor:
        """The head on every asset, computed feature-major: features [C, B·N] between layers (one
        column per asset of each observation), so every layer is one matrix product of a weight
        [C_out, C_in] with all B·N columns at once, whose right operand is shared by the twin
        critics (and by the runs of a stack, which batch only the weights). The weight row's N·w
        scaling (see per_asset_inputs) is folded into its weight column. The same function as
        `forward_rows` (tests/test_assets.py checks it); bench/bench_stack.py update times it.

        x: the flat observation [B, F·N] (followed by the action, for Q(s, a), unless `action` is
        given), or its rows [B, F, N] (`as_rows`): rows whose memory is feature-major ([F, B, N])
        enter the first product without a copy, where the flat observation costs one
        transposing copy per call (an update that shares one rows tensor between its calls pays
        it once). action: [B, N (+1 cash)], given apart from x (no concatenation).
        held: [B, N] weights that replace the observation's last row (the book), for a state value
        V(s') whose next book comes from the action: the gradient then flows into `held` alone
        (not into the whole observation, which needs none)."""
        return self.forward_with(self.head.dense(), self.embedding() if self.embedding is not None else None,
                                 x, action, held)

    def forward_state(self, t: dict, x: torch.Tensor, action: torch.Tensor | None = None,
                      held: torch.Tensor | None = None, xlead: int = 0) -> torch.Tensor:
        """`forward` with the parameters and buffers `t` (by name, relative to this module) in
        place of its own: K runs of a stack (or the twin critics) at once, their tensors with
        leading dimensions L (e.g. [K] or [K, 2]), the inputs with the first `xlead` of them
        (shared by the others: the twins read the same observations); outputs [*L, B, ...].
        Plain tensor code, no vmap: a stack's products are batched matrix products."""
        layers = self.head.dense(sub_state(t, "head."))
        return self.forward_with(layers, t["embedding.weight"] if self.embedding is not None else None,
                                 x, action, held, xlead)

    def forward_with(self, layers, emb, x: torch.Tensor, action: torch.Tensor | None = None,
                     held: torch.Tensor | None = None, xlead: int = 0) -> torch.Tensor:
        """`forward` given the head's dense layers (weights [*L, out, in], biases [*L, out]) and
        embeddings [*L, N, k] (or None); x, action and held with the first `xlead` of L leading."""
        F, N = self.rows, self.n_assets
        self._check(x, action, xlead)
        W0, b0 = layers[0]
        L = W0.shape[:-2]
        lead, extra = L[:xlead], L[xlead:]
        if tuple(x.shape[:xlead]) != tuple(lead):
            raise ValueError(f"inputs with leading dimensions {list(x.shape[:xlead])} for weights with {list(L)}")
        B = x.shape[xlead]
        if x.dim() - xlead == 2:
            if self.with_action and action is None:
                action = x[..., F * N :]
            x = x[..., : F * N].reshape(*lead, B, F, N)
        if self.with_action and action is None:
            raise ValueError("this per-asset critic reads an action besides the observation's rows")
        X = x.transpose(-3, -2)  # [*lead, F, B, N]: a view
        one = (1,) * len(extra)  # the inputs broadcast over the weights' other leading dimensions
        scale = self._row_scale(W0)
        Wx = W0[..., :F] * scale
        H, E = W0.shape[-2], math.prod(extra)

        def first(Wc: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            """[*L, H, f] weights on the rows [*lead, f, B, N]: [*L, H, B·N], the extra
            dimensions folded into the product's rows (one product shares the inputs)."""
            f = rows.shape[-3]
            out = torch.matmul(Wc.reshape(*lead, E * H, f), rows.reshape(*lead, f, B * N))
            return out.view(*L, H, B * N)

        if held is None:
            h = first(Wx, X) + b0[..., None]  # [*L, H, B·N]
        else:
            h = first(Wx[..., : F - 1], X[..., : F - 1, :, :]) + b0[..., None] \
                + Wx[..., F - 1 :] * held.reshape(*lead, *one, 1, B * N)
        c, add = F, None  # add: terms [*L, H, B, N] broadcast over assets or observations
        if self.context == "mean":
            means = X.mean(-1) if held is None else torch.cat([X[..., : F - 1, :, :].mean(-1),
                                                               held.mean(-1).unsqueeze(-2)], dim=-2)  # [*lead, F, B]
            add = torch.matmul(W0[..., c : c + F] * scale, means.reshape(*lead, *one, F, B))[..., None]  # [*L, H, B, 1]
            c += F
        if self.with_action:
            h = h + W0[..., c : c + 1] * action[..., :N].reshape(*lead, *one, 1, B * N)
            c += 1
            if self.cash:
                t = W0[..., c : c + 1] * action[..., N:].reshape(*lead, *one, 1, B)  # [*L, H, B]
                add = t[..., None] if add is None else add + t[..., None]
                c += 1
        if emb is not None:
            t = (W0[..., c:] @ emb.transpose(-1, -2)).unsqueeze(-2)  # [*L, H, 1, N]
            add = t if add is None else add + t
        if add is not None:
            h = (h.view(*L, H, B, N) + add).reshape(*L, H, B * N)
        for W, b in layers[1:]:
            h = torch.matmul(W, torch.relu(h)) + b[..., None]
        out = h.view(*L, h.shape[-2], B, N)
        if self.outputs == "actor":
            if self.cash:  # the cash's mean and raw log-std: the mean over assets of two more outputs
                c2 = out[..., 2:, :, :].mean(-1)  # [*L, 2, B]
                return torch.cat([out[..., 0, :, :], c2[..., 0, :, None], out[..., 1, :, :], c2[..., 1, :, None]], dim=-1)
            return out.transpose(-3, -2).reshape(*L, B, -1)  # [means..., raw log-stds...]
        return out.sum(-1).transpose(-1, -2)  # [*L, B, 1]

    def regularizer_state(self, t: dict, params, lead) -> torch.Tensor | None:
        """`regularizer` of each run, [*lead], from tensors by name with leading dimensions `lead`
        (see `forward_state`); params: the names in t that are parameters. None where it needs the
        dense layers (a relaxed scale axis's level columns): the caller then vmaps `regularizer`."""
        if self.level_columns:
            return None
        reg = torch.zeros(tuple(lead), device=next(iter(t.values())).device)
        for k in params:  # RelaxedModule.regularizer: Σ_l Var_h w_l(h) of each relaxed layer
            if k.endswith("relaxed_weights"):
                reg = reg + t[k].var(dim=-1, unbiased=False).sum(-1)
        if self.embedding is not None and len(self.embedding.tickers) > 1:  # AssetEmbedding.regularizer
            reg = reg + t["embedding.weight"].var(dim=-2, unbiased=False).sum(-1)
        return reg

    def forward_rows(self, x: torch.Tensor) -> torch.Tensor:
        """The reference computation: per-asset input rows [B·N, features] through the head."""
        B, N = x.shape[0], self.n_assets
        z = self.per_asset_inputs(x)
        out = self.head(z.reshape(B * N, -1)).reshape(B, N, -1)
        if self.outputs == "actor":
            if self.cash:  # the cash's mean and raw log-std: the mean over assets of two more outputs
                c = out[..., 2:].mean(1)  # [B, 2]
                return torch.cat([out[..., 0], c[:, :1], out[..., 1], c[:, 1:]], dim=1)
            return out.transpose(1, 2).reshape(B, -1)  # [means..., raw log-stds...]
        return out.sum(1)

    def regularizer(self) -> torch.Tensor:
        reg = self.head.regularizer()
        if self.level_columns:  # Σ of the squared level weights: zero exactly when scale-invariant
            reg = reg + self.head.dense()[0][0][:, self.level_columns].pow(2).sum()
        return reg + self.embedding.regularizer() if self.embedding is not None else reg


def as_rows(x: torch.Tensor, rows: int, n_assets: int) -> torch.Tensor:
    """Flat portfolio observations [..., B, F·N] as their rows [..., B, F, N] (the same numbers:
    x.reshape gives them back), in feature-major memory ([..., F, B, N]): the input a per-asset
    head reads without a copy. One transposing copy, made once for all the calls on it."""
    lead = x.shape[:-1]
    return x.reshape(*lead, rows, n_assets).transpose(-3, -2).contiguous().transpose(-3, -2)


CONTEXTS = ("none", "mean")
ASSET_FAMILIES = ("exact", "relaxed")


def asset_head(family: str, window: int, n_assets: int, outputs: str, with_action: bool,
               hidden: Sequence[int], channels: Sequence[int] | None, banks: int, context: str = "none",
               assets: str = "exact", embed_dim: int = 4, tickers: Sequence[str] | None = None,
               horizons: int = 0, levels: int = 0, cash: bool = False, relaxed_levels: bool = False,
               level_gain: float = 1.0) -> AssetwiseHead:
    """The shared per-asset head of a family (plain MLP, exact or relaxed w.r.t. the per-asset
    reflection); exact/relaxed channels matched in parameters to the plain head of widths `hidden`.
    context: "none" or "mean" (market pooling); assets: "exact" (one head for all) or "relaxed"
    (plus per-asset embeddings of `embed_dim`, keyed by `tickers`); horizons, levels: the rows of
    horizon returns (negate under the reflection) and volatility levels (invariant) per asset;
    cash: a long-only book's cash action besides the N assets' (the actor's cash mean and log-std
    are means over assets of two more head outputs; a critic's every asset reads the cash action):
    plain heads only, as a long-only book has no reflection. relaxed_levels: the head's weights on
    the levels start at zero and are regularised toward zero (a relaxed scale axis); level_gain: the
    factor the levels are multiplied by on the way in (a faster learning rate of their weights)."""
    if cash and family != "plain":
        raise ValueError(f"a long-only book has no reflection symmetry (negating weights leaves the simplex): "
                         f"its per-asset network takes the plain reflection family, not {family!r}; the asset "
                         "and scale axes keep all their families")
    if assets not in ASSET_FAMILIES:
        raise ValueError(f"assets must be one of {', '.join(ASSET_FAMILIES)}, got {assets!r}")
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    k = int(embed_dim) if assets == "relaxed" else 0
    if assets == "relaxed" and k < 1:
        raise ValueError(f"embed_dim must be >= 1 for relaxed assets, got {embed_dim}")
    names = list(tickers) if tickers is not None else [f"asset{i}" for i in range(n_assets)]
    if len(names) != n_assets:
        raise ValueError(f"{len(names)} tickers for {n_assets} assets")
    embedding = AssetEmbedding(names, k) if k else None
    own = (("sign", window + horizons), ("trivial", levels), ("sign", 1))
    reps = _merged(own * (2 if context == "mean" else 1)
                   + (("sign", (1 + cash) if with_action else 0), ("trivial", k)))
    n_out = (2 if outputs == "actor" else 1) + (2 if cash and outputs == "actor" else 0)
    wrap = lambda head: AssetwiseHead(head, window, n_assets, with_action, outputs, context, embedding,  # noqa: E731
                                      horizons, levels, cash, relaxed_levels, level_gain)
    if family == "plain":
        return wrap(PlainMLP(sum(n for _, n in reps), n_out, hidden))
    if not hidden:
        raise ValueError(f"the {family} family needs at least one hidden layer (regular fields); got hidden={list(hidden)}")
    # the head's inputs negate under the reflection, except the levels and embeddings (invariant)
    sym = Symmetry("asset-head-reflection", "C", 2, obs_reps=reps, action_reps=(("sign", 1),))
    in_rep = obs_rep(sym)
    out_rep = action_rep(sym) + trivial_rep(sym, 1) if outputs == "actor" else trivial_rep(sym, 1)
    ch = tuple(channels) if channels is not None else matched_channels(family, in_rep, out_rep, hidden, banks)
    head = (EscnnMLP(in_rep, out_rep, ch, layers=mlp.EXACT_LAYERS) if family == "exact"
            else RelaxedMLP(in_rep, out_rep, ch, banks=banks))
    return wrap(head)
