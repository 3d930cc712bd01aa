"""Network families: equivariance over random inputs and every group element, for every
ready-made Symmetry; relaxed symmetry breaking; gradients, save/load, train/eval."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from gymnasium import spaces

from eqtrade.nn import FAMILIES, build_actor, build_critic, build_qnet, equivariance_errors, param_count, param_report
from eqtrade.nn.exact import exact_param_count
from eqtrade.nn.relaxed import RelaxedMLP, RelaxedModule
from eqtrade.nn.reps import action_rep, obs_rep, trivial_rep
from eqtrade.symmetry import (
    SYMMETRIES,
    cartpole_discrete_reflection,
    cartpole_reflection,
    check_representation,
    get_symmetry,
    pendulum_reflection,
    planar_rotation,
    portfolio_reflection,
    single_asset_reflection,
)

CONTINUOUS = [cartpole_reflection(), pendulum_reflection(), portfolio_reflection(4, 8),
              planar_rotation(4), planar_rotation(3), planar_rotation(4, dihedral=True),
              single_asset_reflection(8, discrete=False)]
DISCRETE = [single_asset_reflection(8), cartpole_discrete_reflection()]
HIDDEN = (32, 32)
TOL = 1e-5


def spaces_of(sym):
    obs = spaces.Box(-np.inf, np.inf, (sym.obs_dim,), dtype=np.float32)
    act = spaces.Discrete(sym.action_dim) if sym.discrete else spaces.Box(-1, 1, (sym.action_dim,), dtype=np.float32)
    return obs, act


def modules(sym, family, seed=0):
    torch.manual_seed(seed)
    obs, act = spaces_of(sym)
    if sym.discrete:
        return {"qnet": build_qnet(family, obs, act, sym, hidden=HIDDEN)}
    return {"actor": build_actor(family, obs, act, sym, hidden=HIDDEN),
            "critic": build_critic(family, obs, act, sym, hidden=HIDDEN)}


def inputs(sym, kind, seed=1, batch=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sym.obs_dim, generator=g) * 2
    if kind == "critic":
        return x, torch.rand(batch, sym.action_dim, generator=g) * 2 - 1
    return x


@pytest.mark.parametrize("name", list(SYMMETRIES))
def test_every_ready_made_symmetry_is_a_representation(name):
    sym = get_symmetry(name)
    check_representation(sym)  # homomorphism and orthogonal for every pair of elements
    assert sym.obs_matrices().shape == (sym.order, sym.obs_dim, sym.obs_dim)
    x = np.random.default_rng(0).normal(size=(5, sym.obs_dim))
    for g in range(sym.order):  # transform_obs agrees with the matrices, on numpy and torch
        np.testing.assert_allclose(sym.transform_obs(x, g), x @ sym.obs_matrices()[g].T)
        np.testing.assert_allclose(sym.transform_obs(torch.as_tensor(x), g).numpy(), x @ sym.obs_matrices()[g].T)


def test_symmetries_act_as_documented():
    s = single_asset_reflection(4)
    obs = np.arange(1.0, 6.0)
    np.testing.assert_array_equal(s.transform_obs(obs, 1), -obs)
    assert list(s.transform_action(np.array([0, 1, 2]), 1)) == [2, 1, 0]  # short <-> long
    q = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(s.transform_qvalues(q, 1), [[3.0, 2.0, 1.0]])
    c = cartpole_reflection()
    np.testing.assert_array_equal(c.transform_obs(np.array([1.0, 0.5, 0.3, 2.0, 4.0]), 1), [-1.0, 0.5, -0.3, -2.0, -4.0])
    r = planar_rotation(4)  # a quarter turn rotates the first joint direction and the target
    o = r.transform_obs(np.array([1.0, 0.0, 0.7, 0.1, 2.0, 0.0, 0.3, 0.4]), 1)
    np.testing.assert_allclose(o, [0.0, 1.0, 0.7, 0.1, 0.0, 2.0, 0.3, 0.4], atol=1e-12)


@pytest.mark.parametrize("family", ["exact", "relaxed"])
@pytest.mark.parametrize("sym", CONTINUOUS + DISCRETE, ids=lambda s: f"{s.name}-{s.group_kind}{s.group_order}")
def test_exact_and_relaxed_at_init_are_equivariant(sym, family):
    for kind, m in modules(sym, family).items():
        for seed in range(3):
            errs = equivariance_errors(m, sym, inputs(sym, kind, seed))
            assert max(errs.values()) < TOL, (kind, errs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sym", [cartpole_reflection(), planar_rotation(3), planar_rotation(4, dihedral=True),
                                 single_asset_reflection(8)], ids=lambda s: s.name)
def test_each_sample_is_computed_on_its_own(sym, family):
    """A batch gives the same outputs as its rows one at a time (no mixing across the batch)."""
    for kind, m in modules(sym, family).items():
        x = inputs(sym, kind, batch=7)
        run = (lambda *a: m(*a)) if kind == "critic" else (lambda a: m(a))
        whole = run(*x) if kind == "critic" else run(x)
        for i in range(7):
            row = run(x[0][i : i + 1], x[1][i : i + 1]) if kind == "critic" else run(x[i : i + 1])
            for a, b in zip(whole if isinstance(whole, tuple) else (whole,), row if isinstance(row, tuple) else (row,)):
                torch.testing.assert_close(a[i : i + 1], b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_can_fit_an_equivariant_target(family):
    """Regression of an odd policy and an invariant value on pendulum states: learnable by all."""
    sym = pendulum_reflection()
    torch.manual_seed(0)
    th, w = torch.rand(2048) * 6.28 - 3.14, torch.randn(2048) * 2
    X = torch.stack([th.cos(), th.sin(), w], 1)
    target = (-3 * th.sin() - 0.5 * w)[:, None]
    a = build_actor(family, *spaces_of(sym), sym, hidden=(64, 64))
    opt = torch.optim.Adam(a.parameters(), 3e-3)
    for _ in range(300):
        idx = torch.randint(0, 2048, (128,))
        loss = (a(X[idx])[0] - target[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (a(X)[0] - target).pow(2).mean() < 0.05 * target.var()


@pytest.mark.parametrize("sym", CONTINUOUS + DISCRETE, ids=lambda s: s.name)
def test_plain_is_not_equivariant(sym):
    """The property above is not vacuous: an unconstrained network fails it."""
    for kind, m in modules(sym, "plain").items():
        errs = equivariance_errors(m, sym, inputs(sym, kind))
        key = "log_std" if kind == "actor" else "q"
        assert errs[key] > 1e-2, (kind, errs)


@pytest.mark.parametrize("sym", [cartpole_reflection(), planar_rotation(4, dihedral=True), single_asset_reflection(8)],
                         ids=lambda s: s.name)
def test_relaxed_breaks_symmetry_when_its_weights_move(sym):
    for kind, m in modules(sym, "relaxed").items():
        assert m.regularizer().item() == 0.0
        with torch.no_grad():
            for layer in m.modules():
                if isinstance(layer, RelaxedModule):
                    layer.relaxed_weights.add_(0.3 * torch.randn_like(layer.relaxed_weights))
        assert m.regularizer().item() > 0.0
        errs = equivariance_errors(m, sym, inputs(sym, kind))
        assert max(errs.values()) > 1e-2, errs


def test_regularizer_is_zero_exactly_when_weights_are_uniform_over_the_group():
    sym = planar_rotation(4)
    m = RelaxedMLP(obs_rep(sym), trivial_rep(sym, 1), channels=(4, 4), banks=3)
    layers = [l for l in m.modules() if isinstance(l, RelaxedModule)]
    for layer in layers:  # uniform over h but different across banks: still zero
        with torch.no_grad():
            layer.relaxed_weights.copy_(torch.arange(1.0, 4.0)[:, None].expand(3, 4))
    assert m.regularizer().item() == 0.0
    with torch.no_grad():
        layers[1].relaxed_weights[2, 1] += 1e-3
    assert m.regularizer().item() > 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_every_parameter(family):
    for sym in (cartpole_reflection(), single_asset_reflection(8)):
        for kind, m in modules(sym, family).items():
            x = inputs(sym, kind)
            out = m(*x) if kind == "critic" else m(x)
            loss = sum(t.pow(2).sum() for t in out) if isinstance(out, tuple) else out.pow(2).sum()
            (loss + m.regularizer()).backward()
            for name, p in m.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, f"{family} {kind}: no gradient for {name}"


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip_and_eval_equals_train(family):
    sym = planar_rotation(4, dihedral=True)
    for kind, m in modules(sym, family).items():
        x = inputs(sym, kind)
        run = (lambda mod: mod(*x)) if kind == "critic" else (lambda mod: mod(x))
        out_train = run(m)
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        fresh = modules(sym, family, seed=123)[kind]
        fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
        m.eval()
        fresh.eval()
        for a, b, c in zip(*(t if isinstance(t, tuple) else (t,) for t in (out_train, run(m), run(fresh)))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
        if family == "exact":
            continue  # escnn's group objects hold local functions: save exact nets by state_dict
        buf = io.BytesIO()  # whole-module pickling too
        torch.save(m, buf)
        again = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
        for a, b in zip(*(t if isinstance(t, tuple) else (t,) for t in (run(m), run(again)))):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("sym", [cartpole_reflection(), planar_rotation(4, dihedral=True), single_asset_reflection(8)],
                         ids=lambda s: s.name)
def test_parameter_counts_are_matched_within_10_percent(sym):
    counts = {f: {k: param_count(m) for k, m in modules(sym, f).items()} for f in FAMILIES}
    for f in ("exact", "relaxed"):
        for k, n in counts[f].items():
            assert abs(n - counts["plain"][k]) / counts["plain"][k] < 0.10, (f, k, counts)


def test_param_report_lists_every_family():
    sym = cartpole_reflection()
    rep = param_report(*spaces_of(sym), sym, hidden=HIDDEN)
    assert set(rep) == set(FAMILIES) and all(set(v) == {"actor", "critic"} for v in rep.values())


def test_exact_param_formula_matches_escnn():
    sym = planar_rotation(4, dihedral=True)
    from eqtrade.nn.exact import EscnnMLP

    rin, rout = obs_rep(sym), action_rep(sym) + trivial_rep(sym, 2)
    m = EscnnMLP(rin, rout, (3, 5))
    assert param_count(m) == exact_param_count(rin, rout, (3, 5))


@pytest.mark.parametrize("sym", [cartpole_reflection(), planar_rotation(4), planar_rotation(4, dihedral=True),
                                 planar_rotation(3)], ids=lambda s: s.name)
def test_frobenius_layers_span_exactly_escnn_linear(sym):
    """The default input/output layers are the same model as escnn.nn.Linear: every map escnn's
    basis produces is reproduced exactly by RegularLift/RegularProject (same dimension, so the
    spaces are equal), and both have the same parameter count."""
    from eqtrade.nn.exact import EscnnMLP, _regular_slots

    rin, rout = obs_rep(sym), action_rep(sym) + trivial_rep(sym, 2)
    ref = EscnnMLP(rin, rout, (3, 5), layers="escnn")
    ours = EscnnMLP(rin, rout, (3, 5))
    assert param_count(ours) == param_count(ref)
    with torch.no_grad():
        for lay in (ref.lift, ref.project):
            lay.weights.normal_()
        W0, b0 = ref.lift.expand_parameters()  # [C·G, d_in]
        W1, b1 = ref.project.expand_parameters()  # [d_out, C·G]
        s0 = int(np.argmin([np.abs(r - np.eye(len(r))).sum() for r in _regular_slots(sym.group, rin)]))  # identity slot
        G = sym.order
        ours.lift.weight.copy_(W0.T.reshape(rin.dim, 3, G)[:, :, s0])  # w_c = K[:, c, e]
        ours.lift.bias.copy_(b0.reshape(3, G)[:, 0])
        ours.project.weight.copy_(W1.T.reshape(5, G, rout.dim)[:, s0, :])
        ours.project.bias.copy_(torch.linalg.lstsq(ours.project.bias_basis, b1[:, None]).solution[:, 0])
        K0, c0 = ours.lift.matrix()
        K1, c1 = ours.project.matrix()
    for a, b in ((K0, W0.T), (c0, b0), (K1, W1.T), (c1, b1)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert W0.abs().max() > 0.1 and W1.abs().max() > 0.1  # not a trivially zero comparison


def test_clear_errors_on_mismatched_spaces():
    sym = cartpole_reflection()
    with pytest.raises(ValueError, match="5-dim observations.*has 4"):
        build_actor("exact", spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (1,)), sym)
    with pytest.raises(ValueError, match="unknown network family 'fancy'"):
        build_critic("fancy", spaces.Box(-1, 1, (5,)), spaces.Box(-1, 1, (1,)), sym)
    with pytest.raises(ValueError, match="needs a Symmetry"):
        build_actor("relaxed", spaces.Box(-1, 1, (5,)), spaces.Box(-1, 1, (1,)))


# -- time-axis (1-D convolution) encoders ------------------------------------------------------
ENC = {"kind": "conv1d", "window": 12, "n_series": 3, "channels": (8, 8), "kernel": 3, "stride": 1}


@pytest.mark.parametrize("family", FAMILIES)
def test_conv1d_encoder_networks_equivariance(family):
    sym = portfolio_reflection(3, 12)
    obs, act = spaces_of(sym)
    torch.manual_seed(0)
    a = build_actor(family, obs, act, sym, hidden=HIDDEN, encoder=ENC)
    c = build_critic(family, obs, act, sym, hidden=HIDDEN, encoder=ENC)
    q_sym = single_asset_reflection(12)
    q = build_qnet(family, *spaces_of(q_sym), q_sym, hidden=HIDDEN,
                   encoder=dict(ENC, n_series=1))
    errs = {**equivariance_errors(a, sym, inputs(sym, "actor")),
            **{"critic": equivariance_errors(c, sym, inputs(sym, "critic"))["q"]},
            **{"qnet": equivariance_errors(q, q_sym, inputs(q_sym, "qnet"))["q"]}}
    if family == "plain":
        assert errs["log_std"] > 1e-3 and errs["critic"] > 1e-3 and errs["qnet"] > 1e-3
    else:
        assert max(errs.values()) < TOL, errs


@pytest.mark.parametrize("family", FAMILIES)
def test_conv1d_feature_maps_are_time_translation_equivariant(family):
    sym = portfolio_reflection(3, 12)
    obs, act = spaces_of(sym)
    enc = build_actor(family, obs, act, sym, hidden=HIDDEN, encoder=ENC).encoder
    x = torch.randn(4, 13, 3)  # 13 days of 3 series; windows = days 0..11 and 1..12
    flat = lambda w: torch.cat([w.reshape(4, -1), torch.zeros(4, 3)], dim=1)
    f0, f1 = enc.feature_map(flat(x[:, :12])), enc.feature_map(flat(x[:, 1:]))
    torch.testing.assert_close(f0[..., 1:], f1[..., :-1], rtol=1e-5, atol=1e-6)  # shift in, shift out


def test_conv1d_params_matched_and_relaxed_breaks():
    sym = portfolio_reflection(3, 12)
    obs, act = spaces_of(sym)
    n = {f: param_count(build_critic(f, obs, act, sym, hidden=HIDDEN, encoder=ENC)) for f in FAMILIES}
    assert all(abs(n[f] - n["plain"]) / n["plain"] < 0.10 for f in ("exact", "relaxed")), n
    c = build_critic("relaxed", obs, act, sym, hidden=HIDDEN, encoder=ENC)
    with torch.no_grad():
        for layer in c.encoder.modules():
            if isinstance(layer, RelaxedModule):
                layer.relaxed_weights.add_(0.3 * torch.randn_like(layer.relaxed_weights))
    assert c.regularizer().item() > 0
    assert equivariance_errors(c, sym, inputs(sym, "critic"))["q"] > 1e-3


def test_conv1d_rejects_a_symmetry_that_does_not_act_per_day():
    sym = cartpole_reflection()  # 5 components of different representations
    obs, act = spaces_of(sym)
    with pytest.raises(ValueError, match="same representation on every day"):
        build_actor("relaxed", obs, act, sym, encoder={"kind": "conv1d", "window": 2, "n_series": 2, "kernel": 1})


GROUPS = [cartpole_reflection(), planar_rotation(3), planar_rotation(4), planar_rotation(4, dihedral=True),
          planar_rotation(6, dihedral=True)]


@pytest.mark.parametrize("sym", GROUPS, ids=lambda s: s.name)
def test_group_major_fourier_paths_equal_the_dense_channel_major_maps(sym):
    """The fast forwards (group-major features, hidden maps in the Fourier basis) compute exactly
    the maps of the dense channel-major kernels, for the exact family and for relaxed layers
    whose relaxed weights are far from uniform."""
    from eqtrade.nn.exact import EscnnMLP
    from eqtrade.nn.relaxed import RelaxedMLP

    rin, rout = obs_rep(sym), action_rep(sym) + trivial_rep(sym, 2)
    x = torch.randn(11, sym.obs_dim)
    torch.manual_seed(0)
    ex = EscnnMLP(rin, rout, (5, 4, 3))
    K0, b0 = ex.lift.matrix()
    h = torch.relu(x @ K0 + b0)
    for layer in ex.hidden:
        h = torch.relu(layer(h))  # channel-major Fourier layer
    K1, b1 = ex.project.matrix()
    torch.testing.assert_close(ex(x), h @ K1 + b1, atol=1e-5, rtol=1e-4)
    rel = RelaxedMLP(rin, rout, (5, 4, 3), banks=3)
    with torch.no_grad():
        for name, p in rel.named_parameters():
            if "relaxed_weights" in name:
                p.add_(torch.randn_like(p) * 0.5)
    rel.fourier = True
    torch.testing.assert_close(rel(x), rel.net(x), atol=1e-5, rtol=1e-4)
    assert rel.regularizer() > 0.01  # really relaxed


def test_escnn_solves_its_bases_with_an_exact_svd_although_scikit_learn_is_installed():
    """scikit-learn (a dependency of skfolio) makes escnn solve for its bases with a randomized
    SVD (different bases each time; an np.matrix error on scikit-learn >= 1.6): eqtrade's escnn
    import switches it back to scipy's exact SVD, so an escnn layer's basis is the same each time."""
    import sklearn  # noqa: F401  (installed with skfolio)
    from escnn.group import _numerical

    from eqtrade.nn.exact import escnn_nn

    enn, gspaces = escnn_nn()
    assert _numerical.randomized_svd is None
    A = np.random.default_rng(0).normal(size=(8, 8)) @ np.diag([1, 1, 1, 1, 1, 1, 0, 0])
    basis = _numerical.null(A, use_sparse=False)
    np.testing.assert_allclose(A @ basis, 0, atol=1e-10)
    assert basis.shape == (8, 2)
