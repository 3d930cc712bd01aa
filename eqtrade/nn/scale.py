"""How a network reads the return-scale axis (`eqtrade.symmetry.ScaleAxis`).

Under R -> c·R the volatility levels of a "relaxed" or "plain" observation move by log c. The
per-asset head reads them through its own first-layer weights on the levels, zero at the start
and regularised toward zero (`eqtrade.nn.asset.AssetwiseHead`, relaxed_levels): a gain in front
of a random weight learns the product g·w slowly (docs/networks.md, "The scale axis"). Any
other network of the relaxed scale family reads them through `ScaleGain`: every level component is
multiplied by a learned gain of its feature (one gain per level feature, shared by every asset, so
the asset axis is untouched; the levels are invariant under the reflection, so scaling them keeps
every reflection family what it is). The gains start at zero: the network starts exactly
invariant to the volatility level, as the relaxed group convolution starts exactly equivariant;
`regularizer()` = Σ_k g_k² is zero exactly when it is invariant again, and pulls the gains there
(the `reg_coef` of the other relaxed weights). A plain-scale network reads the levels freely (no
gain); an exact-scale observation has no levels.
"""

from __future__ import annotations

import torch
from torch import nn

from ..symmetry import ScaleAxis


class ScaleGain(nn.Module):
    """obs -> obs with each level component (`ScaleAxis.shift`) times the gain of its feature."""

    def __init__(self, axis: ScaleAxis, obs_dim: int):
        super().__init__()
        if axis.family != "relaxed" or not axis.shift:
            raise ValueError(f"ScaleGain reads the levels of a relaxed scale axis, got family {axis.family!r} "
                             f"with {len(axis.shift)} level components")
        if max(axis.shift) >= obs_dim:
            raise ValueError(f"the scale axis names component {max(axis.shift)} of a {obs_dim}-dim observation")
        self.scale_gain = nn.Parameter(torch.zeros(axis.n_features))
        onehot = torch.zeros(axis.n_features, obs_dim)
        onehot[list(axis.feature), list(axis.shift)] = 1.0
        keep = torch.ones(obs_dim)
        keep[list(axis.shift)] = 0.0
        self.register_buffer("onehot", onehot, persistent=False)
        self.register_buffer("keep", keep, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * (self.keep + self.scale_gain.to(obs.dtype) @ self.onehot.to(obs.dtype))

    def regularizer(self) -> torch.Tensor:
        """Σ_k g_k²: zero exactly when the network ignores the volatility level."""
        return (self.scale_gain ** 2).sum()


def scale_gain_for(axis: ScaleAxis | None, obs_dim: int) -> ScaleGain | None:
    """The gain module of a relaxed scale axis; None for the exact and plain families (and no axis)."""
    if axis is None or axis.family != "relaxed":
        return None
    return ScaleGain(axis, obs_dim)


@torch.no_grad()
def scale_errors(actor, axis: ScaleAxis, obs: torch.Tensor, cs=(0.5, 2.0)) -> dict[str, float]:
    """The policy's deviation from return-scale invariance: per output (mean, log_std), the max
    over c in `cs` of ‖π(c·s) − π(s)‖ / ‖π(s)‖, where c·s is the observation of the market with
    returns c·R (`ScaleAxis.transform_obs`). Zero for an exact observation and for a relaxed
    network whose gains are zero."""
    mean, log_std = actor(obs)
    out = {"mean": 0.0, "log_std": 0.0}
    for c in cs:
        m, s = actor(axis.transform_obs(obs, c))
        out["mean"] = max(out["mean"], float((m - mean).norm() / mean.norm().clamp_min(1e-12)))
        out["log_std"] = max(out["log_std"], float((s - log_std).norm() / log_std.norm().clamp_min(1e-12)))
    return out
