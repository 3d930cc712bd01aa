"""dm_control tasks from pixels: ``dmc-pixels/DOMAIN-TASK``, the paper's own setting.

Observations are 84x84 RGB frames rendered from a fixed camera, uint8 ([3, 84, 84]); the env
factory (`make_pixels`, the registered ids) stacks the last 3 on the channel axis with
`eqtrade.envs.wrappers.FrameStack` ([9, 84, 84], oldest first). With the state tasks' action repeat, episode length,
rewards and symmetry break (gravity tilt). Rendering is headless: EGL by default, OSMesa as a
fallback (MUJOCO_GL); a clear error names the packages when neither renders.

Each domain declares how its group acts on images (`image_transform`): for the reflection
domains a horizontal flip (the x axis of the x-z plane the bodies move in maps to the image's
width axis for their front cameras); for reacher, seen from its top camera centred on the arm's
base, the rotations of the arena are the image's quarter turns and (with `dihedral=True`) its
flips are the vertical flip followed by those turns; actions as in the state task.
`image_symmetry_check` tests it on the renderer itself: render(g·state) against g·render(state)
for visited states and every g ≠ e. Where the scene is not exactly symmetric (textures, lighting),
the gap is measured and reported: an approximate symmetry, which is what the relaxed networks
are for.
"""

from __future__ import annotations

import os
import sys

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..symmetry.image import image_transform, mirror  # noqa: F401  (re-exported: the frames' group action)
from .dmc import DOMAINS, DMCEnv, parse_env_id

#: the pixel domains and their camera: the reflection domains' front camera (dm_control's camera 0
#: looks along +y at the x-z plane), reacher's top camera (camera 0, above the arm's base)
PIXEL_DOMAINS = {"cartpole": 0, "pendulum": 0, "acrobot": 0, "ball_in_cup": 0, "reacher": 0}
PIXEL_IDS = tuple(f"dmc-pixels/{d}-{t}" for d in PIXEL_DOMAINS for t in DOMAINS[d].tasks)
APT_HINT = ("install a headless OpenGL: `apt-get install libegl1 libgl1-mesa-dri` (EGL, default) or "
            "`apt-get install libosmesa6` (OSMesa), then MUJOCO_GL=egl or MUJOCO_GL=osmesa")


def ensure_rendering() -> str:
    """Choose MuJoCo's headless renderer before MuJoCo is first imported: MUJOCO_GL as set, else
    EGL, else OSMesa; a clear error when MuJoCo was already loaded without rendering."""
    current = os.environ.get("MUJOCO_GL")
    if "mujoco" in sys.modules:
        if current in (None, "", "disable"):
            raise RuntimeError("this process already loaded MuJoCo without rendering (MUJOCO_GL=disable, the state "
                               "tasks' default); pixel tasks need it set before: run with MUJOCO_GL=egl")
        return current
    if current not in (None, "", "disable"):
        return current
    import ctypes.util

    backend = "egl" if ctypes.util.find_library("EGL") else "osmesa" if ctypes.util.find_library("OSMesa") else None
    if backend is None:
        raise RuntimeError(f"no headless OpenGL found for rendering dm_control pixels: {APT_HINT}")
    os.environ["MUJOCO_GL"] = backend
    return backend


def parse_pixel_id(env_id: str) -> tuple[str, str]:
    """``dmc-pixels/cartpole-swingup`` -> (``cartpole``, ``swingup``), with a clear error."""
    from .factory import PIXELS_PREFIX

    name = env_id.removeprefix(PIXELS_PREFIX)
    domain, task = parse_env_id(name)
    if domain not in PIXEL_DOMAINS:
        raise ValueError(f"no pixel version of {env_id!r} yet; pixel tasks: {', '.join(PIXEL_IDS)}")
    return domain, task


SCENES = ("textured", "symmetric")

#: what `scene="symmetric"` turns off: the skybox's random-dot texture, shadows and reflections
SYMMETRIC_RENDER_FLAGS = {"skybox": False, "shadow": False, "reflection": False}


def untexture(model) -> None:
    """Draw every textured geom (the floor's checker grid, ...) in its material's plain colour:
    textures are not mirror-symmetric about the camera."""
    for i in range(model.ngeom):
        mid = model.geom_matid[i]
        if mid >= 0 and np.max(model.mat_texid[mid]) >= 0:
            model.geom_rgba[i] = model.mat_rgba[mid]
            model.geom_matid[i] = -1


class PixelDMCEnv(gym.Env):
    """A dm_control task observed through its front camera: one frame, [3, size, size] uint8
    (`make_pixels` stacks frames).

    scene: "textured" (dm_control's look, as DrQ-v2 sees it: skybox, checker floor, shadows) or
    "symmetric" (the same bodies and lights, without skybox, floor texture, shadows and
    reflections: the frame of a mirrored state is the mirrored frame, up to about 0.3%)."""

    metadata = {"render_modes": []}

    def __init__(self, domain: str = "cartpole", task: str = "swingup", break_strength: float = 0.0,
                 action_repeat: int | None = None, size: int = 84, camera: int | None = None,
                 dihedral: bool = False, scene: str = "textured"):
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {', '.join(SCENES)}, got {scene!r}")
        if domain not in PIXEL_DOMAINS:
            raise ValueError(f"no pixel version of {domain}-{task} yet; pixel tasks: {', '.join(PIXEL_IDS)}")
        if int(size) < 16:
            raise ValueError(f"size must be >= 16, got size={size}")
        self.backend = ensure_rendering()
        self.state_env = DMCEnv(domain, task, break_strength, action_repeat, dihedral=dihedral)
        self.domain, self.task, self.size = domain, task, int(size)
        self.scene = scene
        self._flags = SYMMETRIC_RENDER_FLAGS if scene == "symmetric" else None
        if scene == "symmetric":
            untexture(self.state_env.physics.model)
        self.camera = PIXEL_DOMAINS[domain] if camera is None else int(camera)
        self.break_strength, self.action_repeat = self.state_env.break_strength, self.state_env.action_repeat
        self.symmetry = self.state_env.symmetry  # acts on actions as in the state task; images: `image_transform`
        self.action_space = self.state_env.action_space
        self.observation_space = spaces.Box(0, 255, (3, self.size, self.size), dtype=np.uint8)
        try:
            self.render_frame()
        except Exception as e:  # a renderer that loads but cannot draw
            raise RuntimeError(f"rendering with MUJOCO_GL={self.backend} failed ({e}); {APT_HINT}") from None

    def render_frame(self) -> np.ndarray:
        """The current scene: [3, size, size] uint8."""
        img = self.state_env.physics.render(self.size, self.size, camera_id=self.camera,
                                            render_flag_overrides=self._flags)
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        _, info = self.state_env.reset(seed=seed)
        return self.render_frame(), info

    def step(self, action):
        _, reward, terminated, truncated, info = self.state_env.step(action)
        return self.render_frame(), reward, terminated, truncated, info

    def close(self):
        self.state_env.close()

    def episode_state(self) -> dict:
        """The episode in progress as plain data: the state task's (the frame is rendered from it)."""
        return {"state_env": self.state_env.episode_state()}

    def restore_episode(self, d: dict) -> None:
        self.state_env.restore_episode(d["state_env"])


def pixel_env(domain: str = "cartpole", task: str = "swingup", frames: int = 3, **kwargs) -> gym.Env:
    """A `PixelDMCEnv` with its last `frames` frames stacked (`FrameStack`): [3·frames, size, size];
    the entry point of the registered dmc-pixels/... ids."""
    from .wrappers import FrameStack

    return FrameStack(PixelDMCEnv(domain, task, **kwargs), frames)


def make_pixels(env_id: str, **kwargs) -> gym.Env:
    """`pixel_env` from an id such as ``dmc-pixels/cartpole-swingup`` (the env itself:
    ``.unwrapped``)."""
    domain, task = parse_pixel_id(env_id)
    return pixel_env(domain, task, **kwargs)


def image_gap(render, states, transform, image_op=mirror) -> dict:
    """The image symmetry gap of a renderer for one group element g: for each state s,
    ‖render(g·s) − g·render(s)‖₁ relative to ‖render(s) − its mean‖₁ (0 = an exactly symmetric
    scene, ~1 = unrelated images), and the share of pixels that differ by more than 8 of 255.
    `render(s)` -> [C, H, W]; `transform(s)` = g·s; `image_op(img)` = g·img (default: the mirror)."""
    rel, share = [], []
    for s in states:
        a = render(s).astype(np.float64)
        b = render(transform(s)).astype(np.float64)
        d = np.abs(b - image_op(a))
        rel.append(d.mean() / max(np.abs(a - a.mean()).mean(), 1e-12))
        share.append(float((d.max(axis=0) > 8).mean()))
    return {"eps_img": float(np.mean(rel)), "eps_img_max": float(np.max(rel)), "pixels_off": float(np.mean(share)),
            "states": len(rel)}


def image_symmetry_check(env: gym.Env, n_states: int = 16, seed: int = 0) -> dict:
    """`image_gap` on the renderer for every g ≠ e (averaged; the max over g too): states visited
    by a random policy. `env`: a `PixelDMCEnv`, wrapped or not."""
    env = env.unwrapped
    st_env = env.state_env
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    st_env.reset(seed=seed)
    states = []
    k = 0
    while len(states) < n_states:
        _, _, term, trunc, _ = st_env.step(rng.uniform(low, high))
        k += 1
        if k % 7 == 0:
            states.append(st_env.get_state())
        if term or trunc:
            st_env.reset(seed=seed + k)

    def render(s):
        st_env.set_state(s)
        return env.render_frame()

    sym = env.symmetry
    per_g = [image_gap(render, states, lambda s, g=g: st_env.transform_state(s, g),
                       lambda img, g=g: image_transform(sym, img, g)) for g in range(1, sym.order)]
    env.reset(seed=seed)
    return {"eps_img": float(np.mean([r["eps_img"] for r in per_g])),
            "eps_img_max": float(np.max([r["eps_img_max"] for r in per_g])),
            "pixels_off": float(np.mean([r["pixels_off"] for r in per_g])), "states": len(states),
            "elements": sym.order - 1}
