"""Measuring equivariance of built (or trained) networks."""

from __future__ import annotations

import torch

from ..symmetry import Symmetry


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@torch.no_grad()
def equivariance_errors(module, symmetry: Symmetry, inputs) -> dict[str, float]:
    """Per output, max over group elements of ‖f(g·x) − g·f(x)‖ / ‖f(x)‖.

    inputs: an observation batch [B, d_obs] for actors and Q-networks, (obs, action) for critics.
    """
    out: dict[str, float] = {}
    kind = getattr(module, "kind", "")
    for g in range(symmetry.order):
        if kind == "actor":
            mean, log_std = module(inputs)
            gmean, glog = module(symmetry.transform_obs(inputs, g))
            errs = {"mean": _rel(gmean, symmetry.transform_action(mean, g)), "log_std": _rel(glog, log_std)}
        elif kind == "critic":
            obs, act = inputs
            q = module(obs, act)
            errs = {"q": _rel(module(symmetry.transform_obs(obs, g), symmetry.transform_action(act, g)), q)}
        elif kind == "value":
            v = module(inputs)
            errs = {"v": _rel(module(symmetry.transform_obs(inputs, g)), v)}
        elif kind == "qnet":
            q = module(inputs)
            errs = {"q": _rel(module(symmetry.transform_obs(inputs, g)), symmetry.transform_qvalues(q, g))}
        else:
            raise TypeError(f"cannot measure equivariance of {type(module).__name__}: build it with eqtrade.nn")
        for k, v in errs.items():
            out[k] = max(out.get(k, 0.0), v)
    return out


def equivariance_error(module, symmetry: Symmetry, inputs) -> float:
    """Relative equivariance error of a network: the max of `equivariance_errors` over its outputs."""
    return max(equivariance_errors(module, symmetry, inputs).values())


@torch.no_grad()
def permutation_errors(module, symmetry: Symmetry, inputs, n_perms: int = 8, seed: int = 0,
                       reflect: bool = True) -> dict[str, float]:
    """Per output, max over random asset permutations π (and every g of G when `reflect`) of
    ‖f(g·π·x) − g·π·f(x)‖ / ‖f(x)‖ (actors, critics and values of a portfolio)."""
    import numpy as np

    if symmetry.assets is None:
        raise ValueError(f"{symmetry.name} has no asset axis to permute")
    rng = np.random.default_rng(seed)
    A = symmetry.assets
    out: dict[str, float] = {}
    kind = getattr(module, "kind", "")
    for _ in range(n_perms):
        perm = A.random_permutation(rng)
        for g in range(symmetry.order if reflect else 1):
            if kind == "actor":
                mean, log_std = module(inputs)
                gmean, glog = module(symmetry.transform_obs(A.permute_obs(inputs, perm), g))
                errs = {"mean": _rel(gmean, symmetry.transform_action(A.permute_action(mean, perm), g)),
                        "log_std": _rel(glog, A.permute_action(log_std, perm))}
            elif kind == "critic":
                obs, act = inputs
                q = module(obs, act)
                errs = {"q": _rel(module(*symmetry.transform(obs, act, g, perm)), q)}
            elif kind == "value":
                v = module(inputs)
                errs = {"v": _rel(module(symmetry.transform_obs(A.permute_obs(inputs, perm), g)), v)}
            else:
                raise TypeError(f"cannot measure permutation equivariance of {type(module).__name__}")
            for k, v in errs.items():
                out[k] = max(out.get(k, 0.0), v)
    return out
