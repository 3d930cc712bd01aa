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
