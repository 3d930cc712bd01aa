"""Stacked runs (eqtrade.agents.stack): K SAC runs trained as one batched program equal the same
seeds trained alone, whichever runs they share the stack with; resume and Ctrl-C per run; runs
that cannot stack are refused; batched evaluation rollouts; `eqtrade train --seeds`."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest
import torch

from eqtrade.agents import SAC, Agent, DQN, DQNConfig, EnvSpec, SACConfig
from eqtrade.agents.callbacks import EvalCallback
from eqtrade.agents.stack import check_stackable, learn_stack
from eqtrade.cli import main
from eqtrade.data import load_prices
from eqtrade.envs.rollout import rollout, rollout_many
from eqtrade.util import parse_seeds
from test_agents import CtrlC  # Ctrl-C during a given env step

SMALL = dict(hidden=(8,), batch_size=32, learning_starts=60, eval_every=0, checkpoint_every=0, buffer_size=2000,
             device="cpu")
PER_ASSET = dict(encoder={"kind": "per_asset"}, hidden=(4,), actor_loss="exact", reward_scale=100.0,
                 alpha_init="auto", gamma=0.9)
UPDATES = 200  # the comparisons below cover this many updates
RTOL = 3e-5  # a stacked run against the same seed alone after UPDATES updates (see the first test)


@pytest.fixture(scope="module")
def prices():
    return load_prices(["AAPL", "KO", "XOM", "JNJ"], start="2014-01-01", end="2016-12-31")


def portfolio_spec(prices):
    return EnvSpec("portfolio", dict(prices=prices, window=8, split=("2015-01-01", "2015-12-31"), episode_length=60),
                   dict(full_period=True))


def make(spec, seed, **kw):
    return SAC(spec.make(), SACConfig(seed=seed, **{**SMALL, **kw}), spec, spec.make(evaluation=True))


def assert_same_run(a: SAC, b: SAC, rtol: float) -> None:
    """Two runs' networks and entropy weights agree to `rtol` in each tensor's norm
    (||p - q|| <= rtol ||p||; 0: bitwise), their last losses to 100 x rtol."""
    for m in ("actor", "critic", "critic_target"):
        for (n, p), q in zip(getattr(a, m).state_dict().items(), getattr(b, m).state_dict().values()):
            if not isinstance(p, torch.Tensor):
                continue  # e.g. the embeddings' tickers
            if rtol == 0 or not p.is_floating_point():
                assert torch.equal(p, q), f"{m} {n}"
            else:
                assert float((p - q).norm()) <= rtol * float(p.norm()), f"{m} {n}: {float((p - q).norm() / p.norm()):.2e}"
    torch.testing.assert_close(a.log_alpha.detach(), b.log_alpha.detach(), rtol=rtol, atol=0)
    for k, v in a.last_losses.items():
        assert v == pytest.approx(b.last_losses[k], rel=100 * rtol, abs=0), k


SLOW = pytest.mark.slow
FAMILIES = [  # the per-asset default with both actor losses, the relaxed asset axis, and the flat networks
    pytest.param("plain", PER_ASSET, id="plain-exact-asset"),
    pytest.param("exact", PER_ASSET, id="exact-exact-asset"),
    pytest.param("relaxed", PER_ASSET, id="relaxed-exact-asset"),
    pytest.param("relaxed", {**PER_ASSET, "actor_loss": "critic"}, id="relaxed-critic-asset", marks=SLOW),
    pytest.param("exact", {**PER_ASSET, "encoder": {"kind": "per_asset", "assets": "relaxed"}},
                 id="exact-exact-asset-embed", marks=SLOW),
    pytest.param("plain", {}, id="plain-critic-flat"),
    pytest.param("relaxed", {}, id="relaxed-critic-flat"),
    pytest.param("exact", {}, id="exact-critic-flat"),  # vmapped twins inside the stack's vmap
]


@pytest.mark.parametrize("family,opts", FAMILIES)
def test_run_k_of_a_stack_equals_the_same_seed_trained_alone(family, opts, prices):
    spec = portfolio_spec(prices)
    steps = SMALL["learning_starts"] + UPDATES
    alone = [make(spec, s, family=family, **opts) for s in (0, 1)]
    for a in alone:
        a.learn(steps, progress=False)
    stacked = [make(spec, s, family=family, **opts) for s in (0, 1)]
    learn_stack(stacked, steps, [[] for _ in stacked])
    for a, b in zip(alone, stacked):
        assert b.step == steps and len(b.buffer) == len(a.buffer)
        np.testing.assert_array_equal(a.buffer.actions[:SMALL["learning_starts"]],
                                      b.buffer.actions[:SMALL["learning_starts"]])  # the same random phase
        # batched products sum in another order: bitwise equal for the first ~20 updates, then
        # rounding differences grow (measured after 200 updates, in each tensor's norm: 1e-7 for the
        # exact and relaxed families, up to 1.0e-5 for the plain per-asset critic)
        assert_same_run(a, b, rtol=RTOL)


@pytest.mark.parametrize("family,opts", [
    pytest.param("relaxed", PER_ASSET, id="relaxed-exact-asset"),
    pytest.param("plain", {**PER_ASSET, "actor_loss": "critic", "encoder": {"kind": "per_asset", "context": "mean"}},
                 id="plain-critic-asset-context")])
def test_per_asset_updates_on_shared_rows_train_the_run_the_flat_observations_train(family, opts, prices):
    """A per-asset SAC update reads its observations as rows made once (SAC.rows, eqtrade.nn.asset.as_rows)
    and a state value's next book apart: the same run as the flat observations give (the book
    apart sums the first layer in another order: rounding only)."""
    spec = portfolio_spec(prices)
    steps = SMALL["learning_starts"] + UPDATES
    rows, flat = make(spec, 3, family=family, **opts), make(spec, 3, family=family, **opts)
    assert rows.rows == (9, 4)  # window 8 + the book, 4 assets
    flat.rows = None
    for a in (rows, flat):
        a.learn(steps, progress=False)
    assert_same_run(rows, flat, rtol=RTOL)
    assert make(spec, 0, family="plain", hidden=(8,)).rows is None  # flat networks read flat observations


def test_an_exact_reward_without_its_own_columns_form_gets_flat_observations(prices, monkeypatch):
    """An env whose ExactReward offers no `own` (own_dim 0, as a third-party env may): the per-asset
    SAC's exact update reads flat observations and the env's whole next observation, and trains
    the run the rows and the book alone train."""
    from eqtrade.envs.portfolio import PortfolioExactReward

    spec = portfolio_spec(prices)
    steps = SMALL["learning_starts"] + UPDATES
    rows = make(spec, 3, family="relaxed", **PER_ASSET)
    init = PortfolioExactReward.__init__

    def without_own(self, env):
        init(self, env)
        self.own_dim = 0

    monkeypatch.setattr(PortfolioExactReward, "__init__", without_own)
    flat = make(spec, 3, family="relaxed", **PER_ASSET)
    assert flat.exact_reward.own_dim == 0 and flat.rows is None and rows.rows == (9, 4)
    for a in (rows, flat):
        a.learn(steps, progress=False)
    assert_same_run(rows, flat, rtol=RTOL)


def test_a_stack_of_one_run_is_that_run_alone(prices):
    """A stack of one (a sweep's last pack, --seeds 1) keeps its run axis and trains the run alone."""
    spec = portfolio_spec(prices)
    steps = SMALL["learning_starts"] + 50
    alone, one = make(spec, 2, family="relaxed", **PER_ASSET), make(spec, 2, family="relaxed", **PER_ASSET)
    alone.learn(steps, progress=False)
    learn_stack([one], steps, [[]])
    assert one.step == steps
    assert_same_run(alone, one, rtol=RTOL)


def test_a_run_does_not_depend_on_its_stack_mates(prices):
    spec = portfolio_spec(prices)
    steps = SMALL["learning_starts"] + UPDATES
    one = [make(spec, s, family="relaxed", **PER_ASSET) for s in (5, 7)]
    two = [make(spec, s, family="relaxed", **PER_ASSET) for s in (9, 7, 11)]
    learn_stack(one, steps, [[] for _ in one])
    learn_stack(two, steps, [[] for _ in two])
    assert_same_run(one[1], two[1], rtol=RTOL)
    assert not torch.equal(one[0].actor.state_dict()["head.head.net.0.psi"], two[0].actor.state_dict()["head.head.net.0.psi"])


@pytest.mark.parametrize("noise", [{}, {"obs_noise": 0.5, "stale_ticks": 0.1}], ids=["normalised", "market-noise"])
def test_trading_runs_keep_only_the_new_part_of_each_next_observation(prices, noise):
    """On the portfolio env (a window of returns that slides by a day per step; with market noise
    too: one noisy table per episode) SAC's replay stores each next observation's new rows only,
    and trains exactly (bitwise) the run whose replay stores them whole, alone and in a stack."""
    from eqtrade.agents.buffer import ReplayBuffer

    base = portfolio_spec(prices)
    spec = EnvSpec("portfolio", {**base.kwargs, **noise}, base.eval_kwargs)
    steps = SMALL["learning_starts"] + 80

    def runs(whole: bool):
        out = [make(spec, s, family="relaxed", **PER_ASSET) for s in (3, 4)]
        for a in out:
            if whole:
                b = a.buffer
                a.buffer = ReplayBuffer(b.capacity, b.obs.shape[1:], b.actions.shape[1:], seed=a.config.seed,
                                        gamma=b.gamma, extra_dim=b.extras.shape[1])
        return out

    sliding, whole = runs(False), runs(True)
    sliding[0].learn(steps, progress=False)
    whole[0].learn(steps, progress=False)
    learn_stack(sliding[1:], steps, [[]])
    learn_stack(whole[1:], steps, [[]])
    for a, b in zip(sliding, whole):
        assert a.buffer.slides and a.buffer.next_obs is None and not b.buffer.slides
        assert a.buffer.next_new.shape[1] == 2 * a.interface.assets.n_assets  # the new return row and the book
        assert all(o.param_groups[0]["fused"] for o in (a.actor_opt, a.critic_opt, a.alpha_opt))  # fused Adam on the CPU
        assert_same_run(a, b, rtol=0)


def test_warm_started_runs_of_different_stages_stack_as_they_train_alone(tmp_path, prices):
    """Folds warm-started from the previous fold's best.pt: one source saved before its first
    update (entropy weight still to be set from the buffer), one after: each run of the stack
    sets (or keeps) its own, exactly as alone (a walk-forward study packs such runs)."""
    from eqtrade.run import warm_start

    spec = portfolio_spec(prices)
    before = make(spec, 0, family="relaxed", **PER_ASSET)
    before.save(tmp_path / "before.pt")
    after = make(spec, 1, family="relaxed", **PER_ASSET)
    after.learn(SMALL["learning_starts"] + 5, progress=False)
    after.save(tmp_path / "after.pt")
    assert before.alpha_pending and not after.alpha_pending

    def started(seed, src):
        a = make(spec, seed, family="relaxed", **PER_ASSET)
        warm_start(a, tmp_path / src)
        return a

    steps = SMALL["learning_starts"] + 40
    alone = [started(2, "before.pt"), started(3, "after.pt")]
    for a in alone:
        a.learn(steps, progress=False)
    stacked = [started(2, "before.pt"), started(3, "after.pt")]
    learn_stack(stacked, steps, [[] for _ in stacked])
    for a, b in zip(alone, stacked):
        assert not b.alpha_pending
        assert_same_run(a, b, rtol=RTOL)
    assert float(stacked[1].log_alpha) != float(stacked[0].log_alpha)


def test_pendulum_stack_equals_alone():
    """A gymnasium control task (the dm_control state tasks take the same flat networks): bitwise,
    since a stack's flat plain networks compute each run's products as the run does alone (the
    2x256 hidden layers by oneDNN's kernels, eqtrade.nn.gemm; a vmap's batched products summed
    in another order)."""
    spec = EnvSpec("Pendulum-v1")
    kw = dict(hidden=(256, 256), batch_size=64, learning_starts=50, eval_every=0, checkpoint_every=0,
              buffer_size=2000, device="cpu")
    alone = SAC(spec.make(), SACConfig(seed=4, **kw), spec)
    alone.learn(250, progress=False)
    stacked = [SAC(spec.make(), SACConfig(seed=s, **kw), spec) for s in (3, 4)]
    learn_stack(stacked, 250, [[], []])
    assert_same_run(alone, stacked[1], rtol=0)


def test_stack_is_deterministic_and_resumes_exactly(tmp_path, prices):
    spec = portfolio_spec(prices)
    full = [make(spec, s, family="relaxed", **PER_ASSET) for s in (0, 1)]
    learn_stack(full, 300, [[] for _ in full])
    again = [make(spec, s, family="relaxed", **PER_ASSET) for s in (0, 1)]
    learn_stack(again, 170, [[] for _ in again])  # mid-episode, mid-learning
    for k, a in enumerate(again):
        a.save(tmp_path / f"{k}.pt")
    resumed = [Agent.load(tmp_path / f"{k}.pt", build_env=True) for k in range(2)]
    learn_stack(resumed, 300, [[] for _ in resumed])
    for a, b in zip(full, resumed):
        assert pd.DataFrame(a.metrics).equals(pd.DataFrame(b.metrics))
        assert_same_run(a, b, rtol=0)


def test_ctrl_c_writes_every_runs_checkpoint(tmp_path, prices):
    from eqtrade.agents.callbacks import standard_callbacks

    spec = portfolio_spec(prices)
    runs = [make(spec, s, family="exact", **PER_ASSET) for s in (0, 1, 2)]
    runs[1].env = CtrlC(runs[1].env, 150)
    cbs = [standard_callbacks(a, tmp_path / f"r{k}", progress=False) for k, a in enumerate(runs)]
    for k in range(3):
        (tmp_path / f"r{k}").mkdir()
    with pytest.raises(KeyboardInterrupt):
        learn_stack(runs, 300, cbs)
    for k in range(3):
        resumed = Agent.load(tmp_path / f"r{k}" / "checkpoint.pt", build_env=True)
        assert resumed.step == 150 and resumed.config.seed == k


class _PressAtEnd:
    """A callback that presses Ctrl-C (or sends `sig`) when the training loop ends, before the
    callbacks after it (the other runs' checkpoints) have written anything."""

    def __init__(self, sig=signal.SIGINT):
        self.sig = sig

    def on_start(self, agent, total):
        pass

    def on_step(self, agent):
        return None

    def on_row(self, agent, row):
        pass

    def after_step(self, agent):
        pass

    def on_end(self, agent, status):
        signal.raise_signal(self.sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_stop_while_the_checkpoints_are_written_waits_for_all_of_them(tmp_path, prices, capfd, sig):
    """Ctrl-C (or SIGTERM) stops a stack at a whole step; pressed again while the runs'
    checkpoints are being written, it waits until every run's is written, then stops: all runs
    resume from the same step (else some would be saved and the others not, and the stack could
    not resume)."""
    from eqtrade.agents.callbacks import standard_callbacks

    spec = portfolio_spec(prices)
    runs = [make(spec, s, family="plain", **PER_ASSET) for s in (0, 1, 2)]
    runs[0].env = CtrlC(runs[0].env, 120, sig)
    cbs = [standard_callbacks(a, tmp_path / f"r{k}", progress=False) for k, a in enumerate(runs)]
    cbs[0] = [_PressAtEnd(sig)] + list(cbs[0])  # the second press: before any checkpoint is written
    for k in range(3):
        (tmp_path / f"r{k}").mkdir()
    with pytest.raises(KeyboardInterrupt):
        learn_stack(runs, 300, cbs)
    assert "writing the checkpoints of all 3 runs first" in capfd.readouterr().err
    for k in range(3):
        assert Agent.load(tmp_path / f"r{k}" / "checkpoint.pt", build_env=True).step == 120


def test_ctrl_c_while_a_finished_runs_checkpoint_is_written_stops_after_it(tmp_path, prices, capfd):
    from eqtrade.agents.callbacks import standard_callbacks

    run = make(portfolio_spec(prices), 4, family="plain", **PER_ASSET)
    steps = SMALL["learning_starts"] + 20
    with pytest.raises(KeyboardInterrupt):
        run.learn_with(steps, [_PressAtEnd()] + list(standard_callbacks(run, tmp_path, progress=False)))
    assert "writing the checkpoint first" in capfd.readouterr().err
    assert Agent.load(tmp_path / "checkpoint.pt").step == steps


def test_runs_that_cannot_stack_are_refused(prices):
    spec = portfolio_spec(prices)
    with pytest.raises(ValueError, match=r"different \[agent\] family .*'plain' in seeds 0,2, family = 'relaxed' in seed "
                                         r"1\).*--resume --out DIR --seeds 0,2; eqtrade train --resume --out DIR --seeds 1,\)$"):
        learn_stack([make(spec, 0, family="plain", **PER_ASSET), make(spec, 1, family="relaxed", **PER_ASSET),
                     make(spec, 2, family="plain", **PER_ASSET)], 100, [[], [], []])
    with pytest.raises(ValueError, match=r"--resume --out runs/s3 --seeds 1,\)$"):  # the stack's folder, where known
        check_stackable([make(spec, 0, family="plain", **PER_ASSET), make(spec, 1, family="relaxed", **PER_ASSET)],
                        "runs/s3")
    with pytest.raises(ValueError, match=r"different \[agent\] lr"):
        learn_stack([make(spec, 0, lr=1e-3), make(spec, 1, lr=3e-4)], 100, [[], []])
    other = EnvSpec("portfolio", dict(spec.kwargs, window=12), spec.eval_kwargs)
    with pytest.raises(ValueError, match="envs of different shapes"):
        learn_stack([make(spec, 0), make(other, 1)], 100, [[], []])
    dqn_spec = EnvSpec("trading", dict(spec.kwargs), dict(full_period=True, ticker="KO"))
    dqn = DQN(dqn_spec.make(), DQNConfig(**{**SMALL, "exploration_steps": 50}), dqn_spec)
    with pytest.raises(ValueError, match="runs of different algorithms do not stack"):
        learn_stack([make(spec, 0), dqn], 100, [[], []])
    apart = [make(spec, s) for s in (0, 1, 2, 4)]
    for a, st in zip(apart, (1500, 1600, 1500, 1500)):
        a.step = st
    with pytest.raises(ValueError, match=r"same step: seeds 0,2,4 at step 1500; seed 1 at step 1600\. Bring the others "
                                         r"to step 1600 first \(eqtrade train --resume --out DIR --seeds 0,2,4 --steps 1600\)"):
        learn_stack(apart, 2000, [[] for _ in apart])
    apart[1].step = 1500
    apart[0].step = 1200
    with pytest.raises(ValueError, match=r"--seeds 0, --steps 1500"):  # one seed: a list of one
        learn_stack(apart, 2000, [[] for _ in apart])


def _dqn(spec, seed, **kw):
    cfg = {**SMALL, "exploration_steps": 100, "target_update_interval": 25, "max_grad_norm": 0.05, **kw}
    return DQN(spec.make(), DQNConfig(seed=seed, **cfg), spec, spec.make(evaluation=True))


def _assert_same_dqn(a: DQN, b: DQN, rtol: float) -> None:
    for m in ("q", "q_target"):
        for (n, p), q in zip(getattr(a, m).state_dict().items(), getattr(b, m).state_dict().values()):
            assert float((p - q).norm()) <= rtol * float(p.norm()), f"{m} {n}: {float((p - q).norm() / p.norm()):.2e}"
    assert a.updates == b.updates and a.step == b.step
    assert a.last_losses["q_loss"] == pytest.approx(b.last_losses["q_loss"], rel=100 * rtol, abs=0)


@pytest.mark.parametrize("family,targets", [("plain", "sampled"), ("plain", "exact"),
                                            pytest.param("relaxed", "sampled", marks=SLOW)])
def test_dqn_runs_stack_and_equal_the_same_seeds_alone(family, targets, prices, tmp_path):
    """DQN on the single-asset trading env: run k of a stack equals its seed alone (ε-greedy draws,
    gradients clipped per run: a small max_grad_norm makes the clipping act, target copies; the
    exact targets of every action), and a stack interrupted and resumed from its checkpoints ends
    where the uninterrupted one does."""
    spec = EnvSpec("trading", {"prices": prices, "window": 8, "split": ("2015-01-01", "2015-12-31"),
                               "ticker": "KO", "episode_length": 60}, {"full_period": True})
    steps = SMALL["learning_starts"] + UPDATES
    alone = [_dqn(spec, s, family=family, targets=targets).learn(steps, progress=False) for s in (0, 1)]
    stacked = [_dqn(spec, s, family=family, targets=targets) for s in (0, 1)]
    learn_stack(stacked, steps, [[] for _ in stacked])
    for a, b in zip(alone, stacked):
        _assert_same_dqn(a, b, RTOL)
    first = "head.net.0.weight" if family == "plain" else "head.net.0.psi"
    assert not torch.equal(stacked[0].q.state_dict()[first], stacked[1].q.state_dict()[first])  # two seeds
    half = [_dqn(spec, s, family=family, targets=targets) for s in (0, 1)]
    learn_stack(half, steps // 2 + 7, [[] for _ in half])
    for k, a in enumerate(half):
        a.save(tmp_path / f"r{k}.pt")
    resumed = [DQN.load(tmp_path / f"r{k}.pt", build_env=True) for k in (0, 1)]
    learn_stack(resumed, steps, [[] for _ in resumed])
    for a, b in zip(stacked, resumed):
        _assert_same_dqn(a, b, 0 if family == "plain" else RTOL)


def test_batched_rollouts_equal_single_rollouts(prices):
    spec = portfolio_spec(prices)
    runs = [make(spec, s, family="relaxed", **PER_ASSET) for s in (0, 1, 2)]
    learn_stack(runs, 120, [[] for _ in runs])
    from eqtrade.agents.stack import StackedSAC

    stack = StackedSAC(runs)
    envs = [spec.make(evaluation=True) for _ in runs]
    many = rollout_many(lambda obs: stack.act_all(obs, explore=False), envs, seed=10_000)
    for a, ep in zip(runs, many):
        one = rollout(a.policy(), spec.make(evaluation=True), seed=10_000)
        assert len(ep) == len(one)
        np.testing.assert_allclose(ep.rewards, one.rewards, rtol=1e-6, atol=1e-9)
    # envs of different lengths: each episode ends where its env ends
    short = EnvSpec("portfolio", dict(spec.kwargs, split=("2015-01-01", "2015-06-30")), dict(full_period=True))
    eps = rollout_many(lambda obs: stack.act_all(obs, explore=False),
                       [spec.make(evaluation=True), short.make(evaluation=True), spec.make(evaluation=True)], seed=1)
    assert len(eps[1]) < len(eps[0]) == len(eps[2])


def test_stacked_evaluations_are_the_runs_own(tmp_path, prices, monkeypatch):
    """Each run's evaluation rows (batched over the stack) equal its own evaluation of its policy."""
    spec = portfolio_spec(prices)
    runs = [make(spec, s, family="relaxed", **{**PER_ASSET, "eval_every": 100}) for s in (0, 1)]
    cbs = [[EvalCallback()] for _ in runs]

    def unbatched(self, agent):
        raise AssertionError("a stack's evaluation ran one run at a time")

    with monkeypatch.context() as m:  # the stack's evaluations go through its batched rollout only
        m.setattr(EvalCallback, "evaluate", unbatched)
        learn_stack(runs, 200, cbs)
    for a in runs:
        rows = [m for m in a.metrics if "eval_return" in m]
        assert [r["step"] for r in rows] == [100, 200]
        assert rows[-1]["eval_return"] == pytest.approx(a.evaluate(1), rel=1e-6)


def test_parse_seeds():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds(" 4, 9 ,2") == [4, 9, 2]
    assert parse_seeds("5,") == [5] and parse_seeds("0,") == [0]  # one seed, as a list
    assert parse_seeds("0,1,") == [0, 1]
    for bad, msg in (("0", "between 1 and 10000 .*for seed 0 alone write '--seeds 0,' \\(with a trailing comma\\)"),
                     (str(2**64), f"between 1 and 10000 .*; seeds are whole numbers from 0 to {2**63 - 1}$"),
                     (",3", "not a count"), ("3,,", "not a count"), ("1,1", "twice"), ("a", "not a count"), ("", "not a count"),
                     (",", "not a count"),
                     ("-1", "not a count"), ("1.5", "not a count"),
                     (f"0,{2**63}", f"--seeds: seed {2**63} is out of range")):
        with pytest.raises(ValueError, match=msg):
            parse_seeds(bad)


def test_cli_train_seeds_writes_one_run_per_seed_and_resumes_the_stack(tmp_path, capsys, monkeypatch):
    out = tmp_path / "stack"
    assert main(["train", "--config", "strategies/sac-relaxed.toml", "--seeds", "0,3", "--steps", "300", "--out", str(out), "--no-progress"]) == 2
    assert "learning_starts" in capsys.readouterr().err  # the usual budget check, before anything is written
    assert not out.exists()
    cfg = tmp_path / "small.toml"
    cfg.write_text(open("strategies/sac-relaxed.toml").read()
                   .replace("learning_starts = 1000", "learning_starts = 50").replace("eval_every = 1000", "eval_every = 100")
                   .replace("checkpoint_every = 2000", "checkpoint_every = 100"))
    assert main(["train", "--config", str(cfg), "--seeds", "0,3", "--steps", "100", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"(seed 0) for 100 steps -> {out / 's0'}" in printed and f"(seed 3) for 100 steps -> {out / 's3'}" in printed
    for s in (0, 3):
        assert {"config.toml", "checkpoint.pt", "best.pt", "metrics.csv"} <= {p.name for p in (out / f"s{s}").iterdir()}
        assert Agent.load(out / f"s{s}").config.seed == s
    assert main(["train", "--resume", "--out", str(out), "--steps", "200", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("for 200 steps") == 2
    # resumed again at its end: nothing to train, nothing written
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert "nothing to train: the 2 runs are already at step 200 of 200" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    # a copy of one seed's run beside it: refused, not trained twice
    import shutil

    shutil.copytree(out / "s0", out / "s7")
    assert main(["train", "--resume", "--out", str(out), "--steps", "300", "--no-progress"]) == 2
    assert f"{out / 's0'} and {out / 's7'} both hold seed 0" in capsys.readouterr().err
    shutil.rmtree(out / "s7")
    assert main(["train", "--resume", "--out", str(out), "--seeds", "0,7", "--no-progress"]) == 2
    assert f"nothing to resume for seed 7: {out} holds the runs of seeds 0,3 (s<SEED>/)" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out / "s0"), "--seeds", "0,", "--no-progress"]) == 2
    assert f"--out {out / 's0'} is a run of its own, not the folder of a --seeds stack" in capsys.readouterr().err
    # a run of another family added to the folder: the resume names the seeds apart and its command
    assert main(["train", "--config", str(cfg), "--agent", "plain", "--seeds", "8,", "--steps", "200", "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--steps", "300", "--no-progress"]) == 2
    assert ("family = 'relaxed' in seeds 0,3, family = 'plain' in seed 8): " in (err := capsys.readouterr().err)
            and f"eqtrade train --resume --out {out} --seeds 8,)" in err), err
    shutil.rmtree(out / "s8")
    assert main(["train", "--config", str(cfg), "--seeds", "2", "--seed", "1", "--out", str(tmp_path / "y")]) == 2
    assert "not both" in capsys.readouterr().err
    # the stack's folder given where a run is expected: its runs named
    assert main(["backtest", str(out)]) == 2
    assert "the folder of a --seeds stack, not a run directory" in capsys.readouterr().err
    assert main(["compare", str(out)]) == 2
    assert f"the folder of a --seeds stack: give its runs, {out}/s*" in capsys.readouterr().err
    # --out a file, or a backtest's folder: one line naming it, nothing written
    (tmp_path / "afile").write_text("mine")
    for bad in (tmp_path / "afile", tmp_path / "afile" / "x"):
        assert main(["train", "--config", str(cfg), "--seeds", "2", "--steps", "100", "--out", str(bad)]) == 2
        assert f"{tmp_path / 'afile'} is a file, not a directory" in capsys.readouterr().err
    bt = tmp_path / "bt"
    bt.mkdir()
    (bt / "config.toml").write_text('[backtest]\nsplit = "test"\n')
    assert main(["train", "--config", str(cfg), "--seeds", "2", "--steps", "100", "--out", str(bt)]) == 2
    assert "holds a backtest directory" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine" and sorted(p.name for p in bt.iterdir()) == ["config.toml"]
    # a stacked run's default backtest folder names the stack's folder too (runs/a/s0 and runs/b/s0 apart)
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", str(out / "s0"), "--split", "valid", "--no-html"]) == 0
    assert (tmp_path / "backtests" / "stack-s0-valid" / "returns.parquet").exists()


def test_the_train_split_is_walked_at_every_nth_evaluation(prices):
    from eqtrade.backtest.evaluation import TradingEvalCallback

    spec = portfolio_spec(prices)
    for every, walked in ((2, [100, 200]), (0, []), (1, [50, 100, 150, 200])):
        agent = make(spec, 0, family="plain", **{**PER_ASSET, "eval_every": 50})
        agent.learn(200, progress=False, evaluation=TradingEvalCallback(spec, train_every=every))
        rows = [m for m in agent.metrics if "eval_return" in m]
        assert [r["step"] for r in rows] == [50, 100, 150, 200]
        assert [r["step"] for r in rows if r.get("train_sharpe") is not None] == walked


def test_keep_freed_memory_can_be_switched_off(monkeypatch):
    import eqtrade.util as util

    monkeypatch.setattr(util, "_MALLOC_TUNED", False)
    monkeypatch.setenv("EQTRADE_KEEP_FREED_MEMORY", "0")
    assert util.keep_freed_memory() is False and util._MALLOC_TUNED is False



def test_ctrl_c_before_training_began_says_there_is_nothing_to_resume(tmp_path, capsys, monkeypatch):
    """An interrupt while the runs are being built (train_many before its first checkpoint), or
    while the command line is read, writes no checkpoint: the message says so and points to the same
    command, not to a --resume that would fail."""
    import eqtrade.run as run

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    out = tmp_path / "early"
    monkeypatch.setattr(run, "train_many", interrupted)
    assert main(["train", "--config", "strategies/sac-relaxed.toml", "--seeds", "3", "--out", str(out),
                 "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted before training began; no checkpoint was written, so there is nothing to resume" in err
    assert "--resume" not in err
    monkeypatch.setattr(run, "resolve_config", interrupted)
    assert main(["train", "--config", "strategies/sac-relaxed.toml", "--seed", "0", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "before training began; nothing was written: give the same command again" in err and "--resume" not in err
    assert not out.exists()
    import eqtrade.cli as cli

    monkeypatch.setattr(cli, "_resume_check", interrupted)  # while a resume is being checked
    out.mkdir()
    assert main(["train", "--resume", "--out", str(out)]) == 130
    assert "before training resumed; nothing changed: give the same command again" in capsys.readouterr().err
