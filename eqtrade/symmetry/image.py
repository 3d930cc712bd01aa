"""The one group action on images [..., H, W] (numpy arrays or torch tensors): how a task's
`Symmetry` acts on its frames. The pixel envs render with it (eqtrade.envs.dmc_pixels), the
pixel networks are built on it (eqtrade.nn.pixel), and the image symmetry gap is measured with it."""

from __future__ import annotations

import numpy as np


def mirror(images):
    """The image mirror: flip the width (last) axis of [..., H, W] arrays (numpy or torch)."""
    return images[..., ::-1] if isinstance(images, np.ndarray) else images.flip(-1)


def image_transform(symmetry, images, g: int):
    """g·images for [..., H, W] arrays (numpy or torch): the mirror for C2 tasks; for reacher's
    C_N / D_N (N = 4), element (flip f, rotation k) is the vertical flip (if f) then k quarter turns."""
    el = symmetry.elements[g].to("int")
    if not symmetry.name.startswith("planar-"):  # the reflection domains: C2, the mirror
        return mirror(images) if el == 1 else images
    f, k = el if isinstance(el, tuple) else (0, el)
    if symmetry.group_order != 4:
        raise ValueError(f"{symmetry.name}: images turn by quarter turns only (N = 4)")
    if not isinstance(images, np.ndarray):  # a torch tensor
        out = images.flip(-2) if f else images
        return out.rot90(k, dims=(-2, -1))
    out = images[..., ::-1, :] if f else images
    return np.rot90(out, k, axes=(-2, -1))
