"""Network families built from a Symmetry: plain, exact (escnn) and relaxed (relaxed group convolutions)."""

from .factory import (
    FAMILIES,
    Actor,
    Critic,
    PlainMLP,
    QNet,
    build_actor,
    build_critic,
    build_qnet,
    build_value,
    matched_channels,
    param_count,
    param_report,
)
from .measure import equivariance_error, equivariance_errors, permutation_errors

__all__ = [
    "FAMILIES", "Actor", "Critic", "PlainMLP", "QNet", "build_actor", "build_critic", "build_qnet",
    "matched_channels", "param_count", "param_report", "equivariance_error", "equivariance_errors", "permutation_errors",
]
