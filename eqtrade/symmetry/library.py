"""Ready-made symmetries, by name. Each documents the observation layout it assumes."""

from __future__ import annotations

from typing import Callable

from .core import AssetAxis, Symmetry


def single_asset_reflection(window: int = 32, extra_sign: int = 1, discrete: bool = True) -> Symmetry:
    """C2 reflection of one asset: obs = [W returns, position (extra_sign comps)] all negate;
    discrete actions (short, flat, long) swap short <-> long, or a continuous position negates."""
    kw = dict(action_perm=((0, 1, 2), (2, 1, 0))) if discrete else dict(action_reps=(("sign", 1),))
    return Symmetry(
        "single-asset-reflection", "C", 2, obs_reps=(("sign", window + extra_sign),),
        description="returns R -> -R, position p -> -p, short <-> long; approximate in real markets", **kw,
    )


def portfolio_reflection(n_assets: int = 20, window: int = 32, extra_sign: int | None = None,
                         horizons: int = 0, levels: int = 0) -> Symmetry:
    """C2 reflection of a long/short portfolio: obs = [W x N returns, (H x N horizon returns),
    (V x N volatility levels), N weights]: returns and weights negate, the volatility levels do
    not (they are the same for R and -R); with the standard layout (extra_sign None) also the
    permutations of the N assets (`assets`)."""
    extra = n_assets if extra_sign is None else extra_sign
    reps = (("sign", (window + horizons) * n_assets),) + ((("trivial", levels * n_assets),) if levels else ()) \
        + (("sign", extra),)
    rows = [(window, "returns")] + ([(horizons, "horizons")] if horizons else []) \
        + ([(levels, "levels")] if levels else []) + [(1, "weights")]
    return Symmetry(
        "portfolio-reflection", "C", 2, obs_reps=reps,
        action_reps=(("sign", n_assets),),
        description="all returns -> -returns, weights w -> -w, and any reordering of the assets; "
                    "approximate in real markets",
        assets=AssetAxis(n_assets, tuple(r for r, _ in rows), blocks=tuple(k for _, k in rows))
        if extra_sign is None else None,
    )


def cartpole_reflection() -> Symmetry:
    """C2 for dm_control cartpole: obs [x, cos θ, sin θ, ẋ, θ̇]; x, sin θ and velocities negate, force negates."""
    return Symmetry(
        "cartpole-reflection", "C", 2,
        obs_reps=(("sign", 1), ("trivial", 1), ("sign", 3)), action_reps=(("sign", 1),),
        description="mirror the track: cart position, sin(angle), velocities and force negate", exact=True,
    )


def cartpole_discrete_reflection() -> Symmetry:
    """C2 for gymnasium CartPole-v1: obs [x, ẋ, θ, θ̇] all negate; actions push-left <-> push-right."""
    return Symmetry(
        "cartpole-discrete-reflection", "C", 2, obs_reps=(("sign", 4),), action_perm=((0, 1), (1, 0)),
        description="mirror the track: every state component negates, left <-> right", exact=True,
    )


def pendulum_reflection() -> Symmetry:
    """C2 for gymnasium Pendulum-v1: obs [cos θ, sin θ, θ̇]; sin θ, θ̇ and torque negate."""
    return Symmetry(
        "pendulum-reflection", "C", 2, obs_reps=(("trivial", 1), ("sign", 2)), action_reps=(("sign", 1),),
        description="mirror about the vertical: angle, angular velocity and torque negate", exact=True,
    )


def acrobot_reflection() -> Symmetry:
    """C2 for dm_control acrobot: obs [sin θ1, sin θ2, cos θ1, cos θ2, θ̇1, θ̇2] (world-frame link
    orientations); sines and velocities negate, the elbow torque negates."""
    return Symmetry(
        "acrobot-reflection", "C", 2, obs_reps=(("sign", 2), ("trivial", 2), ("sign", 2)),
        action_reps=(("sign", 1),),
        description="mirror about the vertical: both angles, velocities and the torque negate", exact=True,
    )


def ball_in_cup_reflection() -> Symmetry:
    """C2 for dm_control ball_in_cup: obs [cup x, cup z, ball x, ball z, velocities in the same
    order]; x components negate, z components stay; the action (x force, z force) likewise."""
    xz = (("sign", 1), ("trivial", 1))
    return Symmetry(
        "ball-in-cup-reflection", "C", 2, obs_reps=xz * 4, action_reps=xz,
        description="mirror x -> -x: horizontal positions, velocities and force negate", exact=True,
    )


def planar_rotation(n: int = 4, dihedral: bool = False) -> Symmetry:
    """C_N (or D_N) of the plane for reacher-style states.

    obs = [cos θ1, sin θ1, cos θ2, sin θ2, target_x, target_y, θ̇1, θ̇2]: the first joint's
    direction and the target vector rotate (2-D irrep); the relative joint θ2 and the
    velocities are invariant under rotations and negate under the dihedral flips, as do the
    torques (actions, 2 joints).
    """
    if dihedral:
        rot, flip, kind = "irrep:1,1", "sign", "D"
        obs = ((rot, 1), ("trivial", 1), (flip, 1), (rot, 1), (flip, 2))
        act = ((flip, 2),)
    else:
        rot, kind = "irrep:1", "C"
        obs = ((rot, 1), ("trivial", 2), (rot, 1), ("trivial", 2))
        act = (("trivial", 2),)
    return Symmetry(
        f"planar-{'dihedral' if dihedral else 'rotation'}-{n}", kind, n, obs_reps=obs, action_reps=act,
        description="rotations (and reflections) of the arena about the arm's base",
    )


def image_symmetry(n: int = 4, dihedral: bool = False) -> Symmetry:
    """C_N or D_N acting on the image plane (for eqtrade.nn.conv2d); no flat observation reps."""
    return Symmetry(f"image-{'D' if dihedral else 'C'}{n}", "D" if dihedral else "C", n, obs_reps=(),
                    description="rotations (and reflections) of the image plane")


SYMMETRIES: dict[str, Callable[..., Symmetry]] = {
    "single-asset-reflection": single_asset_reflection,
    "portfolio-reflection": portfolio_reflection,
    "cartpole-reflection": cartpole_reflection,
    "cartpole-discrete-reflection": cartpole_discrete_reflection,
    "pendulum-reflection": pendulum_reflection,
    "acrobot-reflection": acrobot_reflection,
    "ball-in-cup-reflection": ball_in_cup_reflection,
    "planar-rotation": planar_rotation,
    "planar-dihedral": lambda n=4: planar_rotation(n, dihedral=True),
    "image-rotation": image_symmetry,
    "image-dihedral": lambda n=4: image_symmetry(n, dihedral=True),
}


def get_symmetry(name: str, **kwargs) -> Symmetry:
    """A ready-made symmetry by name (see SYMMETRIES), with its size arguments."""
    try:
        return SYMMETRIES[name](**kwargs)
    except KeyError:
        raise KeyError(f"unknown symmetry {name!r}; known: {', '.join(SYMMETRIES)}") from None
