"""`--device auto|cpu|cuda`: every agent keeps its tensors on its device, checkpoints load on any.

No GPU is needed: a tensor an agent creates without naming its device is caught by running the
agent's update and act under `torch.device("meta")` (the default device for tensors created without
one): such a tensor lands on "meta" and meets the agent's CPU tensors in an op, which raises, as it
would on a GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from eqtrade.agents import DQN, SAC, Agent, DQNConfig, DrQConfig, DrQV2, EnvSpec, SACConfig
from eqtrade.agents import resolve_device
from eqtrade.cli import main

RENDERS = os.environ.get("MUJOCO_GL") in ("egl", "osmesa", "glfw")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda:1")


def _agents():
    """(name, factory, steps) for every algorithm and family (tiny networks)."""
    out = []
    for fam in ("plain", "exact", "relaxed"):
        out.append((f"sac-{fam}", lambda fam=fam: SAC(EnvSpec("Pendulum-v1").make(), SACConfig(
            family=fam, hidden=(16, 16), learning_starts=20, batch_size=8, eval_every=0, device="cpu"),
            EnvSpec("Pendulum-v1")), 30))
        out.append((f"dqn-{fam}", lambda fam=fam: DQN(EnvSpec("CartPole-v1").make(), DQNConfig(
            family=fam, hidden=(16, 16), learning_starts=20, batch_size=8, eval_every=0, device="cpu"),
            EnvSpec("CartPole-v1")), 30))
        out.append((f"sac-portfolio-exact-loss-{fam}", lambda fam=fam: SAC(EnvSpec("portfolio").make(), SACConfig(
            family=fam, hidden=(16, 16), learning_starts=20, batch_size=8, eval_every=0, actor_loss="exact",
            encoder={"kind": "per_asset", "assets": "relaxed", "context": "mean"}, device="cpu"),
            EnvSpec("portfolio")), 30))
        if RENDERS:
            spec = EnvSpec("dmc-pixels/cartpole-swingup")
            out.append((f"drqv2-{fam}", lambda fam=fam, spec=spec: DrQV2(spec.make(), DrQConfig(
                family=fam, hidden=(16, 16), learning_starts=10, batch_size=4, eval_every=0, channels=4,
                feature_dim=8, device="cpu"), spec), 14))
    if RENDERS:
        for fam, kind in (("exact", "steerable"), ("relaxed", "group"), ("relaxed", "steerable")):
            spec = EnvSpec("dmc-pixels/cartpole-swingup", {"size": 48})
            out.append((f"drqv2-{fam}-{kind}", lambda fam=fam, kind=kind, spec=spec: DrQV2(spec.make(), DrQConfig(
                family=fam, hidden=(16, 16), learning_starts=10, batch_size=4, eval_every=0, channels=4,
                feature_dim=8, encoder={"kind": kind}, device="cpu"), spec), 14))
    return out


AGENTS = _agents()


@pytest.mark.parametrize("name,make,steps", AGENTS, ids=[a[0] for a in AGENTS])
def test_agents_create_no_tensor_off_their_device(name, make, steps):
    agent = make()
    assert agent.device == torch.device("cpu")
    agent.learn(steps, progress=False)
    obs = agent.obs
    with torch.device("meta"):  # a tensor made without the agent's device would land here
        losses = agent.update()
        agent.act(obs, explore=True)
        agent.act(obs, explore=False)
        agent.equivariance_error()
    assert all(np.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("fam", ["plain", "exact", "relaxed"])
def test_a_stack_of_runs_creates_no_tensor_off_its_device(fam):
    """The stacked learner (eqtrade.agents.stack, `--seeds`, `--pack`): update, act and the
    copy back into each run, under the meta default device."""
    from eqtrade.agents.stack import StackedSAC, learn_stack

    spec = EnvSpec("portfolio")
    runs = [SAC(spec.make(), SACConfig(family=fam, hidden=(4,), learning_starts=20, batch_size=8, eval_every=0,
                                       actor_loss="exact", encoder={"kind": "per_asset"}, seed=s, device="cpu"), spec)
            for s in (0, 1)]
    learn_stack(runs, 30, [[], []])
    stack = StackedSAC(runs)
    for a in runs:
        a._stack = stack
    obs = np.stack([a.obs for a in runs])
    with torch.device("meta"):
        rows = stack.update()
        stack.act_all(obs, explore=True)
        stack.act_all(obs, explore=False)
        runs[0].equivariance_error()  # copies run 0 back from the stack first
    assert len(rows) == 2 and all(np.isfinite(v) for r in rows for v in r.values())


def test_the_device_check_catches_a_tensor_made_without_a_device(monkeypatch):
    """The check above fails when an agent builds an input tensor without its device."""
    agent = SAC(EnvSpec("Pendulum-v1").make(), SACConfig(hidden=(16, 16), learning_starts=5, batch_size=4,
                                                        eval_every=0, device="cpu"), EnvSpec("Pendulum-v1"))
    agent.learn(8, progress=False)
    monkeypatch.setattr(SAC, "_obs_tensor", lambda self, obs: torch.as_tensor(np.asarray(obs, dtype=np.float32))
                        .reshape(-1, *self.env.observation_space.shape))
    with torch.device("meta"), pytest.raises((RuntimeError, NotImplementedError)):
        agent.act(agent.obs, explore=False)


def test_a_checkpoint_saved_for_another_device_loads_here(tmp_path):
    """A run trained with --device cuda (its config says so) loads and continues on this machine."""
    spec = EnvSpec("Pendulum-v1")
    agent = SAC(spec.make(), SACConfig(hidden=(16, 16), learning_starts=10, batch_size=8, eval_every=0,
                                       device="cpu"), spec)
    agent.learn(20, progress=False)
    agent.save(tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    state["config"]["device"] = "cuda:0"
    torch.save(state, tmp_path / "gpu.pt")
    loaded = Agent.load(tmp_path / "gpu.pt", build_env=True)  # device "auto": wherever this process runs
    assert loaded.device == resolve_device("auto")
    obs = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(obs), agent.predict(obs), atol=1e-6)
    loaded.learn(25, progress=False)  # optimiser states moved with the networks
    assert loaded.step == 25
    assert Agent.load(tmp_path / "gpu.pt", device="cpu").device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: --device cuda would train")
def test_cli_device_cuda_without_a_gpu_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", "--steps", "2000", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sees no CUDA device" in err[0]
    assert not out.exists()


def test_cli_device_cpu_trains_and_resume_may_change_the_device(tmp_path):
    out = tmp_path / "run"
    tiny = tmp_path / "tiny.toml"  # a budget that trains: learning_starts below --steps, no evaluations
    tiny.write_text("[agent]\nlearning_starts = 10\nbatch_size = 8\neval_every = 0\n")
    args = ["train", "--env", "Pendulum-v1", "--agent", "plain", "--steps", "30", "--config", str(tiny), "--out", str(out),
            "--no-progress"]
    assert main(args + ["--device", "cpu"]) == 0
    assert 'device = "cpu"' in (out / "config.toml").read_text()
    assert main(["train", "--out", str(out), "--resume", "--steps", "40", "--device", "auto", "--no-progress"]) == 0
    assert Agent.load(out / "checkpoint.pt").step == 40


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
@pytest.mark.parametrize("name,make,steps", AGENTS, ids=[a[0] for a in AGENTS])
def test_agents_train_on_cuda_and_load_on_the_cpu(name, make, steps, tmp_path):
    make().save(tmp_path / "cpu.pt")  # a CPU checkpoint, continued on the GPU
    gpu = Agent.load(tmp_path / "cpu.pt", device="cuda", build_env=True)
    assert gpu.device.type == "cuda"
    gpu.learn(steps, progress=False)
    assert all(p.device.type == "cuda" for p in gpu.policy_module().parameters())
    gpu.save(tmp_path / "gpu.pt")
    back = Agent.load(tmp_path / "gpu.pt", device="cpu")
    obs = gpu.obs
    np.testing.assert_allclose(back.predict(obs), gpu.predict(obs), atol=1e-4)
