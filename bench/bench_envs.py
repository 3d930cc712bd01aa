"""Raw environment steps per second with random actions, against the anchors, on the same real data.

Run: make bench-deps && .venv/bin/python bench/bench_envs.py [--steps 100000]

- TradingEnv (window 32, one ticker) vs gym-anytrading `stocks-v0` (window 32, same ticker's
  bundled prices as its Close column).
- PortfolioEnv (20 bundled assets, window 32) vs FinRL's `PortfolioOptimizationEnv`
  (finrl==0.3.7 wheel, installed without dependencies by `make bench-deps`; the module file
  is loaded on its own with `gym` aliased to gymnasium; nothing is vendored).
Targets (issue 4): TradingEnv >= gym-anytrading; PortfolioEnv >= 100x FinRL's environment.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import types
import warnings
import zipfile
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
CACHE = Path(__file__).resolve().parent / ".cache"
FINRL_MODULE = "finrl/meta/env_portfolio_optimization/env_portfolio_optimization.py"


def steps_per_second(env, actions, seeded: bool = True) -> float:
    env.reset(seed=0) if seeded else env.reset()  # FinRL's reset() takes no seed
    t = time.perf_counter()
    for a in actions:
        out = env.step(a)
        if out[2] or (len(out) > 4 and out[3]):
            env.reset()
    return len(actions) / (time.perf_counter() - t)


def load_finrl_env():
    wheels = sorted(CACHE.glob("[Ff]in[Rr][Ll]-0.3.7-*.whl"))
    if not wheels:
        raise SystemExit(f"FinRL wheel not found in {CACHE}; run `make bench-deps`")
    src = zipfile.ZipFile(wheels[0]).read(FINRL_MODULE).decode()
    sys.modules.setdefault("gym", gymnasium)  # the module imports `gym`; gymnasium is API-compatible here
    sys.modules.setdefault("gym.spaces", gymnasium.spaces)
    sys.modules.setdefault("gym.utils", gymnasium.utils)
    sys.modules.setdefault("gym.utils.seeding", gymnasium.utils.seeding)
    if importlib.util.find_spec("stable_baselines3") is None:  # only used by its get_sb_env helper
        vec = types.ModuleType("stable_baselines3.common.vec_env")
        vec.DummyVecEnv = object
        for name in ("stable_baselines3", "stable_baselines3.common"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["stable_baselines3.common.vec_env"] = vec
    mod = types.ModuleType("finrl_env_portfolio_optimization")
    exec(compile(src, f"{wheels[0].name}/{FINRL_MODULE}", "exec"), mod.__dict__)
    return mod.PortfolioOptimizationEnv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--finrl-steps", type=int, default=1_000)
    args = ap.parse_args()
    import gym_anytrading  # noqa: F401  (registers stocks-v0)

    from eqtrade.data import load_prices
    from eqtrade.envs import make_env  # as eqtrade train builds them: returns normalised by a wrapper

    rng = np.random.default_rng(0)
    prices = load_prices()
    rows = []

    # single asset
    aapl = prices[["AAPL"]].rename(columns={"AAPL": "Close"})
    anytrading = gymnasium.make("stocks-v0", df=aapl, window_size=32, frame_bound=(32, len(aapl))).unwrapped
    ours = make_env("trading", prices=prices, ticker="AAPL", window=32, split=("1990-01-01", "2022-12-28"), episode_length=10**9)
    a2, a3 = rng.integers(0, 2, args.steps).tolist(), rng.integers(0, 3, args.steps).tolist()
    sps_any = steps_per_second(anytrading, a2)
    sps_ours = steps_per_second(ours, a3)
    rows += [("gym-anytrading stocks-v0", sps_any, 1.0), ("eqtrade TradingEnv", sps_ours, sps_ours / sps_any)]

    # portfolio, 20 assets
    Finrl = load_finrl_env()
    long = prices.stack().rename("close").reset_index().rename(columns={"level_1": "tic"})
    long["high"] = long["close"]
    long["low"] = long["close"]
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory() as tmp:
        finrl = Finrl(long, initial_amount=1.0, time_window=32, comission_fee_pct=0.001, cwd=tmp, new_gym_api=True)
        fa = [a / a.sum() for a in rng.random((args.finrl_steps, 21)).astype(np.float32)]
        sps_finrl = steps_per_second(finrl, fa, seeded=False)
    port = make_env("portfolio", prices=prices, window=32, split=("1990-01-01", "2022-12-28"), episode_length=10**9)
    pa = rng.uniform(-1, 1, (args.steps, 20)).astype(np.float32)
    sps_port = steps_per_second(port, list(pa))
    rows += [("FinRL PortfolioOptimizationEnv", sps_finrl, 1.0), ("eqtrade PortfolioEnv", sps_port, sps_port / sps_finrl)]

    print(f"random-action env steps per second (real bundled data, window 32); numpy {np.__version__}, "
          f"pandas {pd.__version__}")
    print(f"{'environment':<34} {'steps/s':>12} {'x anchor':>9}")
    for name, sps, ratio in rows:
        print(f"{name:<34} {sps:>12,.0f} {ratio:>9.2f}")


if __name__ == "__main__":
    main()
