"""How far trained pixel actors are from equivariance: for each DrQ-v2 run directory, the relative
equivariance error of the actor on 32 stored frames, measured on the action mean after tanh (what
results.json recorded for runs made before the measure changed) and before it (what the agents
report now: a policy saturated at ±1 hides the first), and the spread of the relaxed weights over
the group (max over layers of max_l (max_g w_l(g) − min_g w_l(g))).

    .venv/bin/python bench/pixel_equivariance.py runs/dmc-pixels/cartpole-swingup/break-*/*-s0
"""

from __future__ import annotations

import copy
import sys

import numpy as np
import torch


def main(argv=None) -> int:
    from eqtrade.agents import Agent
    from eqtrade.nn.pixel import frames_transform, pixel_equivariance_error

    print("| run | error after tanh | error before tanh | relaxed-weight spread | |pre-tanh| median |")
    print("| --- | --- | --- | --- | --- |")
    for run in argv if argv is not None else sys.argv[1:]:
        a = Agent.load(f"{run}/checkpoint.pt", device="cpu")
        if a.config.family == "plain":
            continue
        idx = np.random.default_rng(0).integers(0, len(a.buffer), 32)
        x = torch.from_numpy(a.buffer.obs[idx]).float()
        before = pixel_equivariance_error(a.actor, a.encoder, a.symmetry, x)
        actor, enc = copy.deepcopy(a.actor).double(), copy.deepcopy(a.encoder).double()
        xd = x.double()
        with torch.no_grad():
            mu = actor(enc(xd))
            after = max(float((actor(enc(frames_transform(a.symmetry, xd, g))) - a.symmetry.transform_action(mu, g))
                              .norm() / mu.norm()) for g in range(1, a.symmetry.order))
            pre = actor.logits(enc(xd)).abs().median().item()
        spread = max([float((p.max(1).values - p.min(1).values).max().detach()) for m in (a.actor, a.encoder)
                      for n, p in m.named_parameters() if n.endswith("relaxed_weights")] or [0.0])
        print(f"| {run} | {after:.2g} | {before:.2g} | {spread:.3f} | {pre:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
