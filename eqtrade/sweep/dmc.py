"""`eqtrade dmc`: the continuous-control sanity suite. SAC with plain / exact / relaxed networks on
dm_control tasks, exact and symmetry-broken, several seeds, as trials of the sweep engine (Ray Tune,
eqtrade.sweep); then a table of
final returns (mean ± 95% t-interval over seeds), returns under test-time observation noise, and
learning curves.

Layout of OUT/: DOMAIN/break-S/FAMILY-sSEED/ (a normal run directory: config.toml, checkpoint.pt,
metrics.csv, learning_curve.png, and result.json once evaluated), results.csv (one row per run
and noise level), summary.csv / summary.md (the table), curves-DOMAIN.png, sweep/ (Ray Tune's
experiment state and logs). A run whose
result.json exists is not redone, and one with a checkpoint is resumed, so an interrupted suite
continues where it stopped when the same command is given again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..envs.factory import DMC_PREFIX, PIXELS_PREFIX, is_pixels, task_name
from ..nn import FAMILIES

log = logging.getLogger(__name__)



@dataclass
class SuiteConfig:
    """One suite: every domain x break x family x seed is a SAC run of `steps` env steps."""

    domains: list = field(default_factory=lambda: ["cartpole-swingup"])
    agents: list = field(default_factory=lambda: list(FAMILIES))
    breaks: list = field(default_factory=lambda: [0.0, 0.5])
    steps: int = 12_500  # env (agent) steps; frames = steps x action_repeat (cartpole: 8 -> 100k frames)
    seeds: int = 3
    obs_noise: list = field(default_factory=lambda: [0.0, 0.05, 0.1])
    eval_episodes: int = 5  # final evaluation, per noise level
    jobs: int = 0  # trials at a time on the local Ray instance; 0 = one per core
    hidden: list = field(default_factory=lambda: [256, 256])
    learning_starts: int = 1000
    eval_every: int = 1250
    curve_episodes: int = 3  # evaluation episodes at each point of the learning curve
    lr: float = 3e-4
    alpha_init: float = 0.1
    reg_coef: float = 1e-3
    batch_size: int = 256
    pixels: bool = False  # DrQ-v2 from 84x84 frames (dmc-pixels/DOMAIN-TASK) instead of SAC from states
    encoder: str | None = None  # pixels: the exact/relaxed families' encoder (lift, group, steerable)
    scene: str = "textured"  # pixels: dm_control's textured scene, or "symmetric" (see dmc_pixels)
    device: str = "auto"  # where each run's networks train (auto: CUDA when torch sees one)

    def __post_init__(self):
        from ..envs.dmc import parse_env_id

        self.domains = [task_name(d) for d in self.domains]
        for d in self.domains:
            parse_env_id(d)
        bad = [a for a in self.agents if a not in FAMILIES]
        if bad:
            raise ValueError(f"unknown agent famil{'ies' if len(bad) > 1 else 'y'} {bad}; use {', '.join(FAMILIES)}")
        for b in self.breaks:
            if not 0.0 <= float(b) <= 1.0:
                raise ValueError(f"--break values must lie in [0, 1], got {b}")
        for s in self.obs_noise:
            if float(s) < 0:
                raise ValueError(f"--obs-noise values must be >= 0, got {s}")
        from ..util import MAX_STEPS, MAX_STEPS_WHY, Range

        if self.steps > MAX_STEPS:
            raise ValueError(f"--steps {self.steps} is more than the limit of {MAX_STEPS:_} steps ({MAX_STEPS_WHY})")
        if self.steps <= self.learning_starts:
            raise ValueError(f"--steps {self.steps} must exceed learning_starts {self.learning_starts}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        Range(1, 1000, note="seeds per combination").check("--seeds", self.seeds)
        Range(1, 100_000, note="final evaluation episodes per noise level").check("--eval-episodes", self.eval_episodes)
        Range(0, 4096, note="trials at a time; 0: one per core").check("--jobs", self.jobs)
        if self.encoder is not None:
            from ..agents.drq import ENCODERS

            if not self.pixels:
                raise ValueError("--encoder applies to the pixel suite (--pixels)")
            if self.encoder not in ENCODERS[1:]:
                raise ValueError(f"--encoder must be one of {', '.join(ENCODERS[1:])}, got {self.encoder!r}")
            if set(self.agents) == {"plain"}:
                raise ValueError("--encoder sets the exact/relaxed families' encoder; --agents plain has none")
        if self.scene != "textured" and not self.pixels:
            raise ValueError("--scene applies to the pixel suite (--pixels)")
        from ..agents import resolve_device
        from ..envs.dmc_pixels import SCENES

        if self.scene not in SCENES:
            raise ValueError(f"--scene must be one of {', '.join(SCENES)}, got {self.scene!r}")
        resolve_device(self.device)


#: `--quick`: a smoke check that finishes in a few minutes on 2 cores
QUICK = dict(domains=["cartpole-swingup"], breaks=[0.0, 0.5], steps=1500, seeds=1, obs_noise=[0.0, 0.1],
             eval_episodes=2, hidden=[64, 64], learning_starts=250, eval_every=500, curve_episodes=1)


#: `--pixels`: DrQ-v2 from pixels within a CPU's budget (1 seed, 2 000 env steps = 16k cartpole
#: frames, batch 128, DrQ-v2's reference networks and learning rate); flags override each value
PIXELS = dict(steps=2000, seeds=1, obs_noise=[0.0], eval_episodes=5, hidden=[1024, 1024], learning_starts=500,
              eval_every=250, curve_episodes=1, lr=1e-4, batch_size=128)
#: `--pixels --quick`: a smoke check of the pixel suite (minutes)
PIXELS_QUICK = dict(PIXELS, steps=600, learning_starts=200, eval_every=200, eval_episodes=1, hidden=[64, 64])


def run_config(sc: SuiteConfig, domain: str, brk: float, family: str, seed: int) -> dict:
    """The `eqtrade train` config of one run of the suite: SAC from states, or DrQ-v2 from pixels."""
    agent = {"family": family, "seed": seed, "hidden": list(sc.hidden), "reg_coef": sc.reg_coef,
             "learning_starts": sc.learning_starts, "eval_every": sc.eval_every,
             "eval_episodes": sc.curve_episodes, "checkpoint_every": sc.eval_every,
             "buffer_size": max(sc.steps, 1000), "lr": sc.lr, "batch_size": sc.batch_size, "device": sc.device}
    env = {"break_strength": float(brk)}
    if sc.pixels:
        algo, env_id, env["scene"] = "drqv2", f"{PIXELS_PREFIX}{domain}", sc.scene
        agent["std_steps"] = sc.steps
        if sc.encoder and family != "plain":
            agent["encoder"] = {"kind": sc.encoder}
    else:
        algo, env_id = "sac", f"{DMC_PREFIX}{domain}"
        agent["alpha_init"] = sc.alpha_init
    return {"run": {"algo": algo, "env": env_id, "steps": sc.steps}, "env": env, "eval_env": {}, "agent": agent}


def run_dir(out: Path, domain: str, brk: float, family: str, seed: int, encoder: str | None = None) -> Path:
    """OUT/DOMAIN/break-S/FAMILY-sSEED, with the pixel encoder when it is not the default lift
    (FAMILY-ENCODER-sSEED), so that suites with other encoders do not share run directories."""
    tag = f"-{encoder}" if encoder not in (None, "lift") and family != "plain" else ""
    return Path(out) / domain / f"break-{float(brk):g}" / f"{family}{tag}-s{seed}"


def _check_same_run(cfg: dict, out: Path) -> None:
    """A run directory holds the run this suite asks for (task, algorithm, encoder), else an error."""
    from ..strategies import load_toml

    saved = load_toml(out / "config.toml")
    for table, key in (("run", "env"), ("run", "algo"), ("env", "scene"), ("agent", "family"), ("agent", "encoder")):
        if saved.get(table, {}).get(key) != cfg[table].get(key):
            raise ValueError(f"{out} holds a run with {table}.{key} = {saved.get(table, {}).get(key)!r}, not "
                             f"{cfg[table].get(key)!r}; use another --out")


def evaluate_with_noise(agent, env, episodes: int, sigma: float, seed: int = 20_000) -> float:
    """Mean return of the deterministic policy with N(0, σ²) noise added to every observation
    entry the agent sees (`eqtrade.envs.wrappers.ObservationNoise`: the environment itself is
    unchanged; uint8 frames: σ is a share of the intensity range)."""
    from ..envs.rollout import evaluate_policy, mean_return
    from ..envs.wrappers import ObservationNoise

    return mean_return(evaluate_policy(agent.policy(), ObservationNoise(env, sigma, seed=seed), episodes, seed=seed))


def run_one(cfg: dict, out: Path, obs_noise: list, eval_episodes: int, progress: bool = False) -> dict:
    """Train (or resume, or reuse) one run, then evaluate it under each noise level."""
    from ..run import train
    from ..util import dump_toml

    out = Path(out)
    if (out / "config.toml").exists():
        _check_same_run(cfg, out)
    res_path = out / "result.json"
    if res_path.exists():
        res = json.loads(res_path.read_text())
        if res["steps"] == cfg["run"]["steps"]:
            return res  # finished with this budget: reused
    t0 = time.time()
    resume = (out / "checkpoint.pt").exists()  # interrupted, or a larger budget now: continue it
    agent, _ = train(cfg, out=out, resume=resume, progress=progress)
    if agent.step != cfg["run"]["steps"]:
        raise ValueError(f"{out} holds a run of {agent.step} steps, more than --steps {cfg['run']['steps']}; "
                         "use another --out")
    train_s = time.time() - t0
    env = agent.eval_env or agent.env
    repeat = env.unwrapped.action_repeat
    returns = {f"{s:g}": evaluate_with_noise(agent, env, eval_episodes, float(s)) for s in obs_noise}
    curve = [(int(m["step"]) * repeat, float(m["eval_return"])) for m in agent.metrics if "eval_return" in m]
    a = cfg["agent"]
    pixels = is_pixels(cfg["run"]["env"])
    res = {"domain": task_name(cfg["run"]["env"]), "pixels": pixels,
           "encoder": (a.get("encoder") or {}).get("kind", "lift" if a["family"] != "plain" else "cnn")
           if pixels else None, "break": cfg["env"]["break_strength"],
           "family": a["family"], "seed": a["seed"], "steps": agent.step, "frames": agent.step * repeat,
           "returns": returns, "curve": curve, "equivariance_error": agent.equivariance_error(),
           "train_seconds": train_s, "resumed": resume}
    from ..util import atomic_write_bytes

    atomic_write_bytes(res_path, json.dumps(res, indent=1).encode())
    atomic_write_bytes(out / "suite_run.toml", dump_toml(cfg).encode())
    return res


def dmc_trial(cfg: dict, run_dir: Path, report) -> dict:
    """One trial of the suite for the sweep engine: `run_one`, then its worst noisy return reported."""
    res = run_one(cfg["train"], run_dir, cfg["obs_noise"], cfg["eval_episodes"])
    report({"return": min(res["returns"].values()), "step": float(res["steps"])})
    return {"steps": res["steps"]}


def run_suite(sc: SuiteConfig, out: Path, progress: bool = True, address: str | None = None):
    """Every combination as a trial of the sweep engine (eqtrade.sweep, on Ray Tune: `jobs` trials at
    a time on a local Ray instance, or on the cluster at `address`), then `summarise`: (results, table).

    Ctrl-C: the sweep stops, runs keep their checkpoints; the same call again reuses finished runs
    (result.json) and resumes the interrupted ones. OUT is locked while the suite runs
    (eqtrade.lock; each trial locks its own run directory)."""
    from ..lock import locked

    with locked(Path(out).resolve(), "eqtrade dmc"):
        return _run_suite(sc, out, progress, address)


def _run_suite(sc: SuiteConfig, out: Path, progress: bool, address: str | None):
    from .engine import run_trials

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(asdict(sc), indent=1))
    trials = {}
    for d in sc.domains:
        for b in sc.breaks:
            for s in range(sc.seeds):
                for f in sc.agents:
                    rd = run_dir(out, d, b, f, s, sc.encoder if sc.pixels else None)
                    trials[str(rd.relative_to(out))] = {"train": run_config(sc, d, b, f, s), "dir": str(rd),
                                                        "obs_noise": list(sc.obs_noise),
                                                        "eval_episodes": sc.eval_episodes}
    rows = run_trials(trials, out / "sweep", trial_fn=dmc_trial, metric="return", address=address,
                      cpus=sc.jobs or os.cpu_count() or 1, progress=progress, columns=("step", "return"),
                      fresh=True)
    unfinished = [r for r in rows if r["status"] == "unfinished"]
    if unfinished:
        raise KeyboardInterrupt
    failed = [f"{r['trial']}: {r['error'].strip().splitlines()[-1] if r['error'].strip() else 'error'}"
              for r in rows if r["status"] == "error"]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed: " + "; ".join(failed))
    results = [json.loads((Path(t["dir"]) / "result.json").read_text()) for t in trials.values()]
    return results, summarise(results, out)


def summarise(results: list[dict], out: Path):
    """results.csv, summary.csv/.md (mean ± 95% interval per domain x break x family, one
    column per noise level) and one learning-curve PNG per domain."""
    import pandas as pd

    from ..util import mean_ci
    from ..util import atomic_write_bytes

    rows = [{"domain": r["domain"], "break": r["break"], "family": r["family"], "seed": r["seed"],
             "frames": r["frames"], "obs_noise": float(s), "return": v, "train_seconds": r["train_seconds"],
             "equivariance_error": r["equivariance_error"], **({"encoder": r["encoder"]} if r.get("encoder") else {})}
            for r in results for s, v in r["returns"].items()]
    df = pd.DataFrame(rows).sort_values(["domain", "break", "family", "seed", "obs_noise"])
    atomic_write_bytes(out / "results.csv", df.to_csv(index=False).encode())
    summary = []
    order = {f: i for i, f in enumerate(FAMILIES)}
    for (dom, brk, fam), g in df.groupby(["domain", "break", "family"]):
        row = {"domain": dom, "break": brk, "family": fam, "seeds": g["seed"].nunique(), "frames": int(g["frames"].max())}
        if "encoder" in g and g["encoder"].notna().any():  # pixels: which conv encoder
            row["encoder"] = "/".join(sorted(g["encoder"].dropna().unique()))
        for s, gs in g.groupby("obs_noise"):
            m, h = mean_ci(gs["return"])
            row[f"return σ={s:g}"] = f"{m:.1f} ± {h:.1f}" if np.isfinite(h) else f"{m:.1f}"
            row[f"mean σ={s:g}"], row[f"ci σ={s:g}"] = m, h
        # learning speed: the mean evaluation return over the learning curve (area under it / frames)
        auc = [np.mean([p[1] for p in r["curve"]]) for r in results
               if (r["domain"], r["break"], r["family"]) == (dom, brk, fam) and r["curve"]]
        if auc:
            m, h = mean_ci(auc)
            row["curve mean"] = f"{m:.1f} ± {h:.1f}" if np.isfinite(h) else f"{m:.1f}"
        row["train min/run"] = g.groupby("seed")["train_seconds"].first().mean() / 60
        summary.append(row)
    summary = pd.DataFrame(summary)
    summary = summary.sort_values(["domain", "break", "family"], key=lambda c: c.map(order) if c.name == "family" else c)
    atomic_write_bytes(out / "summary.csv", summary.to_csv(index=False).encode())
    shown = [c for c in summary.columns if not c.startswith(("mean ", "ci "))]
    text = summary[shown].to_markdown(index=False, floatfmt=".2f")
    atomic_write_bytes(out / "summary.md", (text + "\n").encode())
    for dom in df["domain"].unique():
        plot_curves([r for r in results if r["domain"] == dom], out / f"curves-{dom}.png", dom)
    return summary[shown]


def plot_curves(results: list[dict], png: Path, title: str) -> None:
    """Evaluation return against frames: one panel per break strength, one line per family
    (mean over seeds, shaded min..max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    breaks = sorted({r["break"] for r in results})
    fig, axes = plt.subplots(1, len(breaks), figsize=(5.5 * len(breaks), 4), squeeze=False, sharey=True)
    for ax, b in zip(axes[0], breaks):
        for i, fam in enumerate(FAMILIES):
            runs = [r["curve"] for r in results if r["break"] == b and r["family"] == fam and r["curve"]]
            if not runs:
                continue
            n = min(len(c) for c in runs)
            x = np.array([p[0] for p in runs[0][:n]])
            y = np.array([[p[1] for p in c[:n]] for c in runs])
            ax.plot(x, y.mean(0), "o-", ms=3, color=f"C{i}", label=f"{fam} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
            if len(runs) > 1:
                ax.fill_between(x, y.min(0), y.max(0), color=f"C{i}", alpha=0.15)
        ax.set_title(f"{title}, break {b:g}" + (" (exact symmetry)" if b == 0 else ""))
        ax.set_xlabel("environment frames")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    axes[0][0].set_ylabel("evaluation return")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
