"""dm_control domains: declared symmetries checked on the simulator, broken variants, the gymnasium
API, pickling, and the `eqtrade dmc` suite end to end."""

from __future__ import annotations

import json
import os
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import eqtrade  # noqa: F401  (registers the ids)
from eqtrade.cli import main
from eqtrade.envs.dmc import DOMAINS, ENV_IDS, DMCEnv, make, parse_env_id, symmetry_check

VARIANTS = [pytest.param(eid, {}, id=eid) for eid in ENV_IDS] + [
    pytest.param("dmc/reacher-easy", {"dihedral": True}, id="reacher-D4"),
    pytest.param("dmc/reacher-easy", {"rotations": 6}, id="reacher-C6"),
]


@pytest.mark.parametrize("env_id,kw", VARIANTS)
def test_declared_symmetry_is_exact_on_the_simulator(env_id, kw):
    env = make(env_id, **kw)
    r = symmetry_check(env, n_states=12, seed=1)
    assert r["pairs"] == 12 * (env.symmetry.order - 1)
    assert r["eps_P_max"] < 1e-6 and r["eps_R_max"] < 1e-6, r


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_broken_variant_is_measurably_asymmetric_and_grows_with_strength(env_id):
    eps = [symmetry_check(make(env_id, break_strength=s), n_states=12, seed=1)["eps_P"] for s in (0.0, 0.3, 1.0)]
    assert eps[1] > 1e-3, eps
    assert eps[2] > eps[1] > eps[0], eps


def test_the_check_catches_a_wrongly_declared_symmetry(monkeypatch):
    # not vacuous: if g did not act on the physical state, the check reports a large error
    env = make("dmc/cartpole-swingup")
    monkeypatch.setattr(env, "transform_state", lambda st, g: {k: v.copy() for k, v in st.items()})
    assert symmetry_check(env, n_states=8)["eps_P"] > 0.1


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_api(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    u = env.unwrapped
    assert u.observation_space.shape == (u.symmetry.obs_dim,)
    assert u.action_space.shape == (u.symmetry.action_dim,)
    obs, _ = env.reset(seed=7)
    assert u.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, gym.make(env_id).reset(seed=7)[0])  # seeded resets reproduce


def test_episode_length_frames_and_truncation():
    env = make("dmc/cartpole-swingup", action_repeat=10)
    env.reset(seed=0)
    n, frames, term, trunc = 0, 0, False, False
    while not (term or trunc):
        _, r, term, trunc, info = env.step(np.zeros(1))
        n += 1
        frames += info["frames"]
        assert 0.0 <= r <= 10.0  # dm_control rewards lie in [0, 1] per frame
    assert (n, frames, term, trunc) == (100, 1000, False, True)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1))


def test_bad_inputs_get_clear_errors():
    env = make("dmc/ball_in_cup-catch")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\].*1.5"):
        make("dmc/cartpole-swingup", break_strength=1.5)
    with pytest.raises(ValueError, match="unknown dm_control task.*known"):
        parse_env_id("dmc/cheetah-run")
    with pytest.raises(ValueError, match="action_repeat"):
        DMCEnv("pendulum", "swingup", action_repeat=0)


def test_break_tilts_gravity_and_leaves_strength_zero_unchanged():
    g0 = make("dmc/acrobot-swingup").physics.model.opt.gravity.copy()
    np.testing.assert_allclose(g0, [0, 0, -9.81])
    g1 = make("dmc/acrobot-swingup", break_strength=1.0).physics.model.opt.gravity
    np.testing.assert_allclose(np.rad2deg(np.arctan2(g1[0], -g1[2])), 30.0)
    np.testing.assert_allclose(np.linalg.norm(g1), 9.81)


def test_restored_episode_continues_identically():
    """The episode state (plain data, what checkpoints store) continues the episode exactly in a
    fresh env built from the same arguments."""
    env = make("dmc/reacher-easy", break_strength=0.5)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.uniform(-1, 1, 2))
    state = pickle.loads(pickle.dumps(env.episode_state()))  # plain data: survives a round trip
    clone = make("dmc/reacher-easy", break_strength=0.5)
    clone.restore_episode(state)
    acts = rng.uniform(-1, 1, (40, 2))
    a = [env.step(x)[:2] for x in acts]
    b = [clone.step(x)[:2] for x in acts]
    for (oa, ra), (ob, rb) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
    # the next episode's random start is the same too
    np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])


def test_every_domain_declares_a_layout_matching_its_symmetry():
    for name, spec in DOMAINS.items():
        env = DMCEnv(name, spec.tasks[0])
        assert env.symmetry.obs_dim == env.observation_space.shape[0]
        assert spec.layout.count(",") + 1 >= 3


# -- the suite ----------------------------------------------------------------------------------
TINY = dict(domains=["cartpole-swingup"], breaks=[0.0, 0.5], steps=100, seeds=1, obs_noise=[0.0, 0.1],
            eval_episodes=1, hidden=[16, 16], learning_starts=50, eval_every=50, curve_episodes=1, jobs=1)


@pytest.mark.slow
def test_suite_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys, ray_instance):
    """12 Ray trials (6 runs, then the same command again): slow. In the default suite, what it checks
    is guarded by test_suite_resumes_an_interrupted_run_and_runs_in_parallel (run_suite on Ray),
    test_a_suite_run_is_evaluated_under_noise_and_reused_and_summarised (each run, the reuse, the
    table and curves) and test_the_dmc_command_builds_the_suite_and_prints_its_table (the CLI)."""
    from eqtrade.sweep import dmc as suite

    monkeypatch.setattr(suite, "QUICK", TINY)
    out = tmp_path / "dmc"
    assert main(["dmc", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "return σ=0.1" in printed and "curve mean" in printed and "curves-cartpole-swingup.png" in printed
    results = list(out.glob("*/break-*/*/result.json"))  # (Ray Tune keeps its own under sweep/)
    assert len(results) == 6  # 2 breaks x 3 families x 1 seed
    r = json.loads(results[0].read_text())
    assert r["frames"] == 100 * 8 and set(r["returns"]) == {"0", "0.1"}
    assert [p[0] for p in r["curve"]] == [400, 800]
    assert (out / "curves-cartpole-swingup.png").stat().st_size > 10_000
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6 and set(summary["family"]) == {"plain", "exact", "relaxed"}
    assert set(summary["break"]) == {0.0, 0.5}
    # the same command again reuses every finished run (nothing is retrained)
    stamps = {p: p.stat().st_mtime_ns for p in results}
    assert main(["dmc", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_suite_resumes_an_interrupted_run_and_runs_in_parallel(tmp_path, ray_instance):
    from eqtrade.sweep.dmc import SuiteConfig, run_config, run_dir, run_suite
    from eqtrade.run import train

    sc = SuiteConfig(**dict(TINY, agents=["plain"], jobs=2))
    # a run that stopped half-way (its checkpoint at step 50) is continued, not restarted
    cfg = run_config(sc, "cartpole-swingup", 0.0, "plain", 0)
    half = dict(cfg, run=dict(cfg["run"], steps=50))
    train(half, out=run_dir(tmp_path, "cartpole-swingup", 0.0, "plain", 0), progress=False)
    results, table = run_suite(sc, tmp_path, progress=False)
    assert sorted(r["resumed"] for r in results) == [False, True]
    assert all(r["steps"] == 100 for r in results)
    assert len(table) == 2


def test_suite_rejects_bad_options():
    from eqtrade.sweep.dmc import SuiteConfig

    with pytest.raises(ValueError, match="unknown agent family"):
        SuiteConfig(agents=["plain", "fancy"])
    with pytest.raises(ValueError, match="break"):
        SuiteConfig(breaks=[0, 2])
    with pytest.raises(ValueError, match="unknown dm_control task"):
        SuiteConfig(domains=["walker-walk"])


def test_train_cli_on_a_broken_dmc_task(tmp_path):
    out = tmp_path / "run"
    tiny = tmp_path / "tiny.toml"  # a budget that trains: learning_starts below --steps, no evaluations
    tiny.write_text("[agent]\nlearning_starts = 20\nbatch_size = 8\neval_every = 0\n")
    assert main(["train", "--env", "dmc/pendulum-swingup", "--break", "0.5", "--agent", "relaxed", "--steps", "60",
                 "--config", str(tiny), "--out", str(out), "--no-progress"]) == 0
    assert 'break_strength = 0.5' in (out / "config.toml").read_text()
    assert main(["train", "--env", "portfolio", "--break", "0.5", "--steps", "10", "--out", str(tmp_path / "x")]) == 2


def test_symmetry_cli_on_the_simulator(capsys):
    assert main(["symmetry", "--env", "dmc/pendulum-swingup", "--break", "0,1", "--states", "4"]) == 0
    out = capsys.readouterr().out
    assert "exact to machine precision" in out and "pendulum-reflection" in out


def test_relaxed_sac_on_dihedral_reacher_uses_the_fourier_path_and_trains():
    # D4 with 2 banks: the relaxed networks take the Fourier form, also inside the vmapped critics
    from eqtrade.agents import EnvSpec
    from eqtrade.agents.sac import SAC, SACConfig

    spec = EnvSpec("dmc/reacher-easy", {"dihedral": True})
    cfg = SACConfig(family="relaxed", hidden=(32, 32), learning_starts=40, eval_every=0, checkpoint_every=0,
                    batch_size=32)
    agent = SAC(spec.make(), cfg, spec, spec.make(evaluation=True))
    assert agent.policy_module().head.fourier
    agent.learn(80, progress=False)
    assert np.isfinite(agent.last_losses["critic_loss"]) and np.isfinite(agent.last_losses["actor_loss"])
    assert agent.equivariance_error() > 1e-4  # 40 updates moved the relaxed weights off uniform


@pytest.mark.slow  # 35 s; make test-all (Ctrl-C of a sweep and of a stack stay in the default suite)
def test_ctrl_c_stops_a_parallel_suite_with_the_running_runs_checkpointed(tmp_path):
    """Ctrl-C in a terminal signals the whole foreground process group: Ray Tune stops the sweep
    within seconds, nothing else starts, and the running runs keep their last periodic checkpoint
    (the same call again continues from it: test_suite_resumes_an_interrupted_run_...)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    code = (
        "from eqtrade.sweep.dmc import SuiteConfig, run_suite\n"
        "sc = SuiteConfig(domains=['cartpole-swingup'], agents=['plain'], breaks=[0.0, 0.5, 1.0], steps=20000,"
        " seeds=1, obs_noise=[0.0], eval_episodes=1, hidden=[16, 16], learning_starts=50, eval_every=150,"
        " curve_episodes=1, jobs=2)\n"
        f"run_suite(sc, {str(tmp_path)!r}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while len(list(tmp_path.glob("*/break-*/*/checkpoint.pt"))) < 2:  # both runs saved at step 150
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.time()
    assert proc.wait(60) != 0
    assert time.time() - t0 < 30
    ckpts = sorted(tmp_path.glob("*/break-*/*/checkpoint.pt"))
    assert [p.parent.parent.name for p in ckpts] == ["break-0", "break-0.5"]  # the third never started
    assert not list(tmp_path.glob("*/break-*/*/result.json"))
    err = proc.stderr.read()
    assert b"Stop signal received" in err  # Ray Tune's own message: the sweep stopped
    assert b"Tuner.restore(" not in err  # ... but not its Python resume hint: eqtrade says how to resume
    steps = [torch.load(p, weights_only=False)["step"] for p in ckpts]
    assert all(250 <= st < 20000 for st in steps), steps


PIXELS_TINY = dict(steps=24, seeds=1, obs_noise=[0.0, 0.1], eval_episodes=1, hidden=[16, 16], learning_starts=12,
                   eval_every=12, curve_episodes=1, lr=1e-4, batch_size=4)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MUJOCO_GL") not in ("egl", "osmesa", "glfw"), reason="needs headless OpenGL")
def test_pixel_suite_through_the_cli(tmp_path, monkeypatch, capsys, ray_instance):
    """`eqtrade dmc --pixels`: DrQ-v2 runs from frames for every family and break, with the
    group-conv encoder for the equivariant families; observation noise on pixels. Three pixel Ray
    trials: slow; guarded in the default suite by test_a_pixel_suite_run_trains_from_frames_with_its_encoder
    (one such run, without Ray) and test_the_dmc_command_builds_the_suite_and_prints_its_table
    (the --pixels flags)."""
    from eqtrade.sweep import dmc as suite

    monkeypatch.setattr(suite, "PIXELS_QUICK", PIXELS_TINY)
    out = tmp_path / "dmc-pixels"
    # the symmetric scene: no shadow map to draw in software GL (a frame in ~9 ms instead of ~45 ms)
    assert main(["dmc", "--pixels", "--quick", "--encoder", "group", "--break", "0.5", "--jobs", "2",
                 "--scene", "symmetric", "--out", str(out), "--no-progress"]) == 0
    assert "return σ=0.1" in capsys.readouterr().out
    results = [json.loads(p.read_text()) for p in out.glob("*/break-*/*/result.json")]
    assert len(results) == 3 and all(r["pixels"] and r["frames"] == 24 * 8 and r["break"] == 0.5 for r in results)
    cfgs = [p.read_text() for p in out.glob("*/break-*/*/config.toml")]
    assert sum('kind = "group"' in c for c in cfgs) == 2  # exact and relaxed; plain: the reference CNN
    assert all('env = "dmc-pixels/cartpole-swingup"' in c and 'scene = "symmetric"' in c for c in cfgs)
    assert all(r["equivariance_error"] is None if r["family"] == "plain" else np.isfinite(r["equivariance_error"])
               for r in results)


def test_a_suite_run_is_evaluated_under_noise_and_reused_and_summarised(tmp_path):
    """What the (slow) end-to-end suite checks of its runs, without Ray: run_one trains a run,
    evaluates it under each noise level and writes result.json; the same call again reuses it
    (nothing retrained); summarise writes the table over every break and family and the curves."""
    import pandas as pd

    from eqtrade.sweep.dmc import SuiteConfig, run_config, run_dir, run_one, summarise

    sc = SuiteConfig(**TINY)
    cfg = run_config(sc, "cartpole-swingup", 0.5, "relaxed", 0)
    rd = run_dir(tmp_path, "cartpole-swingup", 0.5, "relaxed", 0)
    r = run_one(cfg, rd, sc.obs_noise, sc.eval_episodes)
    saved = json.loads((rd / "result.json").read_text())
    assert saved["frames"] == 100 * 8 and set(saved["returns"]) == {"0", "0.1"} and not saved["resumed"]
    assert [p[0] for p in saved["curve"]] == [400, 800]
    assert np.isfinite(saved["equivariance_error"]) and saved["family"] == "relaxed" and saved["break"] == 0.5
    stamps = {p: p.stat().st_mtime_ns for p in rd.iterdir()}
    assert run_one(cfg, rd, sc.obs_noise, sc.eval_episodes) == saved  # reused: nothing is retrained or rewritten
    assert {p: p.stat().st_mtime_ns for p in rd.iterdir()} == stamps
    results = [dict(r, **{"break": b, "family": f, "equivariance_error": None if f == "plain" else 0.0})
               for b in (0.0, 0.5) for f in ("plain", "exact", "relaxed")]
    table = summarise(results, tmp_path)
    assert {"return σ=0", "return σ=0.1", "curve mean"} <= set(table.columns)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 6 and list(summary["family"][:3]) == ["plain", "exact", "relaxed"]
    assert set(summary["break"]) == {0.0, 0.5}
    assert (tmp_path / "curves-cartpole-swingup.png").stat().st_size > 10_000
    assert len(pd.read_csv(tmp_path / "results.csv")) == 12  # one row per run and noise level


def test_the_dmc_command_builds_the_suite_and_prints_its_table(tmp_path, monkeypatch, capsys):
    """`eqtrade dmc` without Ray: the presets and flags become the SuiteConfig run_suite gets, and
    the command prints the table and the curve files (the suite itself: the Ray tests above)."""
    import pandas as pd

    from eqtrade.sweep import dmc as suite

    seen = []

    def fake_run_suite(sc, out, progress=True, address=None):
        seen.append((sc, out))
        out.mkdir(parents=True)
        (out / "curves-cartpole-swingup.png").write_bytes(b"png")
        return [], pd.DataFrame({"family": ["plain"], "return σ=0.1": ["1.0 ± 0.1"], "curve mean": ["2.0"]})

    monkeypatch.setattr(suite, "run_suite", fake_run_suite)
    out = tmp_path / "dmc"
    assert main(["dmc", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "return σ=0.1" in printed and "curve mean" in printed and "curves-cartpole-swingup.png" in printed
    sc, where = seen[-1]
    assert where == out and not sc.pixels and all(getattr(sc, k) == v for k, v in suite.QUICK.items())
    assert sc.agents == ["plain", "exact", "relaxed"]
    assert main(["dmc", "--pixels", "--quick", "--encoder", "group", "--break", "0.5", "--jobs", "2", "--scene",
                 "symmetric", "--out", str(tmp_path / "px"), "--no-progress"]) == 0
    sc, _ = seen[-1]
    assert sc.pixels and sc.encoder == "group" and sc.breaks == [0.5] and sc.jobs == 2 and sc.scene == "symmetric"
    assert all(getattr(sc, k) == v for k, v in suite.PIXELS_QUICK.items() if k not in ("jobs",))


@pytest.mark.skipif(os.environ.get("MUJOCO_GL") not in ("egl", "osmesa", "glfw"), reason="needs headless OpenGL")
def test_a_pixel_suite_run_trains_from_frames_with_its_encoder(tmp_path):
    """One run of `eqtrade dmc --pixels --encoder group` without Ray (the suite on Ray: the slow
    test_pixel_suite_through_the_cli): DrQ-v2 from frames with the group-conv encoder, evaluated
    under pixel noise; the plain family's run keeps the reference CNN."""
    from eqtrade.sweep.dmc import SuiteConfig, run_config, run_one

    # one evaluation on the curve and one under noise (4 episodes of 125 rendered steps would take twice as long)
    sc = SuiteConfig(**dict(PIXELS_TINY, pixels=True, encoder="group", breaks=[0.5], scene="symmetric", eval_every=24,
                            obs_noise=[0.1]))
    assert "encoder" not in run_config(sc, "cartpole-swingup", 0.5, "plain", 0)["agent"]
    cfg = run_config(sc, "cartpole-swingup", 0.5, "exact", 0)
    r = run_one(cfg, tmp_path / "run", sc.obs_noise, sc.eval_episodes)
    assert r["pixels"] and r["frames"] == 24 * 8 and r["break"] == 0.5 and r["encoder"] == "group"
    assert set(r["returns"]) == {"0.1"} and np.isfinite(r["returns"]["0.1"]) and len(r["curve"]) == 1
    assert np.isfinite(r["equivariance_error"]) and r["equivariance_error"] < 1e-4
    text = (tmp_path / "run" / "config.toml").read_text()
    assert 'kind = "group"' in text and 'env = "dmc-pixels/cartpole-swingup"' in text and 'algo = "drqv2"' in text


def test_encoder_needs_the_pixel_suite(capsys):
    assert main(["dmc", "--encoder", "group"]) == 2
    assert "--encoder applies to the pixel suite" in capsys.readouterr().err


def test_a_suite_does_not_reuse_runs_of_another_encoder_scene_or_task(tmp_path):
    from eqtrade.util import dump_toml
    from eqtrade.sweep.dmc import PIXELS, SuiteConfig, _check_same_run, run_config, run_dir

    lift = SuiteConfig(**dict(PIXELS, pixels=True))
    group = SuiteConfig(**dict(PIXELS, pixels=True, encoder="group"))
    assert run_dir(tmp_path, "cartpole-swingup", 0, "exact", 0) == run_dir(tmp_path, "cartpole-swingup", 0, "exact", 0,
                                                                            "lift")
    assert run_dir(tmp_path, "cartpole-swingup", 0, "exact", 0, "group").name == "exact-group-s0"
    assert run_dir(tmp_path, "cartpole-swingup", 0, "plain", 0, "group").name == "plain-s0"
    rd = run_dir(tmp_path, "cartpole-swingup", 0, "exact", 0)
    rd.mkdir(parents=True)
    (rd / "config.toml").write_text(dump_toml(run_config(lift, "cartpole-swingup", 0, "exact", 0)))
    _check_same_run(run_config(lift, "cartpole-swingup", 0, "exact", 0), rd)  # the same run: fine
    with pytest.raises(ValueError, match="agent.encoder"):
        _check_same_run(run_config(group, "cartpole-swingup", 0, "exact", 0), rd)
    sym = SuiteConfig(**dict(PIXELS, pixels=True, scene="symmetric"))
    with pytest.raises(ValueError, match="env.scene"):
        _check_same_run(run_config(sym, "cartpole-swingup", 0, "exact", 0), rd)
    with pytest.raises(ValueError, match="run.env"):
        _check_same_run(run_config(SuiteConfig(), "cartpole-swingup", 0, "exact", 0), rd)


@pytest.mark.parametrize("args,message", [
    (["dmc", "--scene", "symmetric"], "--scene applies to the pixel suite"),
    (["dmc", "--pixels", "--encoder", "group", "--agents", "plain"], "--agents plain has none"),
    (["dmc", "--pixels", "--encoder", "conv"], "--encoder must be one of lift, group, steerable"),
    (["dmc", "--device", "tpu"], "unknown device 'tpu'"),
    (["symmetry", "--scene", "symmetric"], "--scene applies to pixel tasks"),
])
def test_suite_flags_are_checked(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err
