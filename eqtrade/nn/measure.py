"""Measuring equivariance of built (or trained) networks."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from ..symmetry import Symmetry


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


class _Element(NamedTuple):
    """How one symmetry element acts on what a network reads and gives: observations, actions,
    per-action scales (an actor's log-std: permuted with the actions, never negated) and Q-vectors."""

    obs: Callable
    act: Callable
    scale: Callable
    qvalues: Callable


@torch.no_grad()
def _max_errors(module, inputs, elements) -> dict[str, float]:
    """Per output, max over `elements` of ‖f(g·x) − g·f(x)‖ / ‖f(x)‖; f(x) is computed once."""
    kind = getattr(module, "kind", "")
    if kind not in ("actor", "critic", "value", "qnet"):
        raise TypeError(f"cannot measure equivariance of {type(module).__name__}: build it with eqtrade.nn")
    base = module(*inputs) if kind == "critic" else module(inputs)
    out: dict[str, float] = {}
    for e in elements:
        if kind == "actor":
            mean, log_std = base
            gmean, glog = module(e.obs(inputs))
            errs = {"mean": _rel(gmean, e.act(mean)), "log_std": _rel(glog, e.scale(log_std))}
        elif kind == "critic":
            obs, act = inputs
            errs = {"q": _rel(module(e.obs(obs), e.act(act)), base)}
        elif kind == "value":
            errs = {"v": _rel(module(e.obs(inputs)), base)}
        else:
            errs = {"q": _rel(module(e.obs(inputs)), e.qvalues(base))}
        for k, v in errs.items():
            out[k] = max(out.get(k, 0.0), v)
    return out


def _group_element(symmetry: Symmetry, g: int, perm=None) -> _Element:
    """g (and, with `perm`, the asset permutation applied first) as an `_Element`."""
    A = symmetry.assets
    p_obs = (lambda x: x) if perm is None else (lambda x: A.permute_obs(x, perm))
    p_act = (lambda a: a) if perm is None else (lambda a: A.permute_action(a, perm))
    return _Element(lambda x: symmetry.transform_obs(p_obs(x), g), lambda a: symmetry.transform_action(p_act(a), g),
                    p_act, lambda q: symmetry.transform_qvalues(q, g))


def equivariance_errors(module, symmetry: Symmetry, inputs) -> dict[str, float]:
    """Per output, max over group elements of ‖f(g·x) − g·f(x)‖ / ‖f(x)‖.

    inputs: an observation batch [B, d_obs] for actors and Q-networks, (obs, action) for critics.
    """
    return _max_errors(module, inputs, [_group_element(symmetry, g) for g in range(symmetry.order)])


def equivariance_error(module, symmetry: Symmetry, inputs) -> float:
    """Relative equivariance error of a network: the max of `equivariance_errors` over its outputs."""
    return max(equivariance_errors(module, symmetry, inputs).values())


def permutation_errors(module, symmetry: Symmetry, inputs, n_perms: int = 8, seed: int = 0,
                       reflect: bool = True) -> dict[str, float]:
    """Per output, max over random asset permutations π (and every g of G when `reflect`) of
    ‖f(g·π·x) − g·π·f(x)‖ / ‖f(x)‖ (actors, critics and values of a portfolio)."""
    import numpy as np

    if symmetry.assets is None:
        raise ValueError(f"{symmetry.name} has no asset axis to permute")
    rng = np.random.default_rng(seed)
    perms = [symmetry.assets.random_permutation(rng) for _ in range(n_perms)]
    return _max_errors(module, inputs, [_group_element(symmetry, g, perm) for perm in perms
                                        for g in range(symmetry.order if reflect else 1)])
