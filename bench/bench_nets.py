"""Forward+backward time of the network families at matched parameter counts.

Run: .venv/bin/python bench/bench_nets.py [--batch 256] [--reps 50] [--threads 2]
Prints, per task (20 assets x 32-day portfolio, 5-dim cartpole, single-asset DQN, reacher-style
state under C4 (dmc/reacher-easy's default) and D4) and module
(actor, critic, Q-net): parameters, milliseconds per forward+backward, and the ratio to plain.
Targets (issue 3): relaxed within 2x of plain, exact (escnn) within 3x. "exact" is the default
exact family (Frobenius input/output layers, Fourier hidden layers); "exact-escnn" is the same
model with escnn.nn.Linear input/output layers (the reference, expanded at every forward);
"relaxed-fourier"/"relaxed-dense" is the relaxed net computed the other of its two equivalent ways
(RelaxedMLP picks the Fourier form where |G|/banks >= 4, the dense kernels otherwise).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from gymnasium import spaces

warnings.filterwarnings("ignore", message=".*py3nj.*")

from eqtrade.nn import FAMILIES, build_actor, build_critic, build_qnet, mlp, param_count  # noqa: E402
from eqtrade.symmetry import (  # noqa: E402
    cartpole_reflection,
    planar_rotation,
    portfolio_reflection,
    single_asset_reflection,
)


def timeit(fn, reps: int) -> float:
    for _ in range(5):
        fn()
    best = float("inf")
    for _ in range(3):  # best of 3 blocks: robust to the other core's noise
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B = args.batch
    tasks = [
        ("portfolio 20x32", portfolio_reflection(20, 32), False),
        ("cartpole 5-dim", cartpole_reflection(), False),
        ("trading DQN 33-dim", single_asset_reflection(32), True),
        ("reacher C4 8-dim", planar_rotation(4), False),
        ("reacher D4 8-dim", planar_rotation(4, dihedral=True), False),
    ]
    print(f"batch {B}, hidden {args.hidden} (plain widths; equivariant families matched in parameters), "
          f"{args.threads} threads, torch {torch.__version__}")
    print(f"{'task':<20} {'module':<7} {'family':<15} {'params':>8} {'ms fwd+bwd':>11} {'x plain':>8}")
    for name, sym, discrete in tasks:
        obs = spaces.Box(-1, 1, (sym.obs_dim,))
        x = torch.randn(B, sym.obs_dim)
        if discrete:
            act = spaces.Discrete(sym.action_dim)
            modules = {"qnet": lambda f: build_qnet(f, obs, act, sym, hidden=args.hidden)}
        else:
            act = spaces.Box(-1, 1, (sym.action_dim,))
            a = torch.randn(B, sym.action_dim)
            modules = {"actor": lambda f: build_actor(f, obs, act, sym, hidden=args.hidden),
                       "critic": lambda f: build_critic(f, obs, act, sym, hidden=args.hidden)}
        for mname, build in modules.items():
            base = None
            for fam in (*FAMILIES, "exact-escnn", "relaxed-other"):
                mlp.EXACT_LAYERS = "escnn" if fam == "exact-escnn" else "frobenius"
                m = build(fam.split("-")[0])
                if fam == "relaxed-other":  # the same relaxed net, computed the way it does not choose
                    m.head.fourier = not m.head.fourier
                    fam = "relaxed-" + ("fourier" if m.head.fourier else "dense")
                if mname == "actor":
                    step = lambda: sum(t.sum() for t in m(x)).backward()
                elif mname == "critic":
                    step = lambda: m(x, a).sum().backward()
                else:
                    step = lambda: m(x).sum().backward()
                ms = timeit(step, args.reps)
                base = base or ms
                print(f"{name:<20} {mname:<7} {fam:<15} {param_count(m):>8} {ms:>11.2f} {ms / base:>8.2f}")


if __name__ == "__main__":
    main()
