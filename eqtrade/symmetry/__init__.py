"""The Symmetry protocol joining environments and networks; ready-made symmetries by name."""

from .core import BLOCK_KINDS, FAMILIES, SCALE_FAMILIES, AssetAxis, ScaleAxis, Symmetry, check_representation
from .library import (
    SYMMETRIES,
    acrobot_reflection,
    ball_in_cup_reflection,
    cartpole_discrete_reflection,
    cartpole_reflection,
    get_symmetry,
    image_symmetry,
    pendulum_reflection,
    planar_rotation,
    portfolio_reflection,
    single_asset_reflection,
)

__all__ = [
    "FAMILIES", "SCALE_FAMILIES", "BLOCK_KINDS", "Symmetry", "AssetAxis", "ScaleAxis", "check_representation", "SYMMETRIES", "get_symmetry", "single_asset_reflection",
    "portfolio_reflection", "cartpole_reflection", "cartpole_discrete_reflection", "pendulum_reflection",
    "planar_rotation", "image_symmetry", "acrobot_reflection", "ball_in_cup_reflection",
]
