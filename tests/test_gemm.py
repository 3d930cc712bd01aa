"""eqtrade.nn.gemm.linear (oneDNN's products for the large layers): F.linear's values and
gradients over random shapes, strides and options; the fallbacks (small products, vmap, switched
off); the plain networks that use it, alone and stacked."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from eqtrade.agents.sac import EnsembleMLP
from eqtrade.nn import gemm
from eqtrade.nn.mlp import PlainMLP

pytestmark = pytest.mark.skipif(not gemm.onednn_enabled(), reason="this torch build has no working oneDNN linear op")


@pytest.fixture
def calls(monkeypatch):
    """How many products went to oneDNN (forward and backward)."""
    seen = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        @staticmethod
        def _linear_pointwise(*a):
            seen.append(tuple(a[0].shape))
            return real(*a)

    monkeypatch.setattr(gemm.torch.ops, "mkldnn", Spy, raising=False)
    return seen


def _reference(x, w, b, relu):
    y = F.linear(x.double(), w.double(), None if b is None else b.double())
    return torch.relu(y) if relu else y


@pytest.mark.parametrize("seed", range(6))
def test_values_and_gradients_are_f_linears_over_random_shapes(seed, calls):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    lead = [(), (3,), (2, 2)][seed % 3]
    rows, k, n = [(300, 128, 160), (64, 96, 700), (1024, 40, 120)][seed % 3]
    x = rnd(*lead, rows, k).requires_grad_()
    w = rnd(k, n).t() if seed % 2 else rnd(n, k)  # weights of any strides (a twin's [in, out] slice, transposed)
    w = (w / k ** 0.5).requires_grad_()
    b = rnd(n).requires_grad_() if seed != 4 else None
    relu = seed % 2 == 0
    y = gemm.linear(x, w, b, relu=relu)
    assert calls, "a product this large goes to oneDNN"
    ref = _reference(x, w, b, relu)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    gy = rnd(*y.shape)
    grads = torch.autograd.grad(y, [t for t in (x, w, b) if t is not None], gy)
    want = torch.autograd.grad(_reference(x, w, b, relu), [t for t in (x, w, b) if t is not None], gy.double())
    for got, exp in zip(grads, want):
        assert got.shape == exp.shape and got.dtype == torch.float32
        # relative to the gradient's norm (each entry sums over up to 2 048 rows in fp32)
        assert float((got.double() - exp.double()).norm()) <= 1e-5 * float(exp.double().norm())
    assert torch.equal(gemm.linear(x, w, b, relu=relu), y), "the same call gives the same bits"


def test_small_products_other_dtypes_and_vmap_are_f_linear_itself(calls):
    x, w, b = torch.randn(32, 16), torch.randn(8, 16), torch.randn(8)
    assert torch.equal(gemm.linear(x, w, b), F.linear(x, w, b))
    assert torch.equal(gemm.linear(x, w, b, relu=True), torch.relu(F.linear(x, w, b)))
    xd, wd = torch.randn(256, 256, dtype=torch.float64), torch.randn(256, 256, dtype=torch.float64)
    assert torch.equal(gemm.linear(xd, wd), F.linear(xd, wd))
    xs, ws = torch.randn(3, 256, 256), torch.randn(3, 256, 256)
    out = torch.func.vmap(gemm.linear)(xs, ws)
    torch.testing.assert_close(out, torch.bmm(xs, ws.transpose(1, 2)), rtol=1e-5, atol=1e-4)
    assert not calls


def test_switched_off_every_product_is_f_linears(calls):
    x, w = torch.randn(256, 256, requires_grad=True), torch.randn(256, 256, requires_grad=True)
    old = gemm.use_onednn(False)
    try:
        assert gemm.backend() == "torch (F.linear)"
        y = gemm.linear(x, w, relu=True)
        assert torch.equal(y, torch.relu(F.linear(x, w)))
        y.sum().backward()
        assert not calls
    finally:
        gemm.use_onednn(old)
    gemm.linear(x, w)
    assert calls


def test_the_environment_variable_switches_it_off():
    code = "from eqtrade.nn import gemm; print(gemm.backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "EQTRADE_ONEDNN": "0"}, check=True).stdout
    assert out.strip() == "torch (F.linear)"


def test_the_plain_mlp_computes_what_its_layers_compute(calls):
    torch.manual_seed(0)
    net = PlainMLP(40, 3, (256, 256))
    x = torch.randn(512, 40)
    torch.testing.assert_close(net(x), net.net(x), rtol=1e-5, atol=1e-5)  # its nn.Sequential
    assert calls


def test_the_critic_ensemble_computes_the_batched_products(calls):
    torch.manual_seed(0)
    ens = EnsembleMLP(20, (256, 256))
    x = torch.randn(300, 20)
    h = x.expand(2, *x.shape)
    for i, (W, b) in enumerate(zip(ens.weights, ens.biases)):
        h = torch.baddbmm(b, h, W)
        h = torch.relu(h) if i < len(ens.weights) - 1 else h
    torch.testing.assert_close(ens(x), h, rtol=1e-5, atol=1e-5)
    assert calls


@pytest.mark.parametrize("module", ["mlp", "ensemble"])
def test_stacked_tensors_give_each_runs_own_bits(module):
    """forward_state over K runs' stacked tensors = each run's forward, bitwise, values and gradients."""
    torch.manual_seed(1)
    nets = [PlainMLP(12, 2, (256, 256)) if module == "mlp" else EnsembleMLP(12, (256, 256)) for _ in range(3)]
    params, _ = torch.func.stack_module_state(nets)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    x = torch.randn(3, 200, 12)
    out = nets[0].forward_state(params, x, xlead=1)
    out.square().sum().backward()
    for k, net in enumerate(nets):
        own = net(x[k])
        assert torch.equal(out[k], own)
        own.square().sum().backward()
        for name, p in net.named_parameters():
            assert torch.equal(params[name].grad[k], p.grad), name
    with pytest.raises(ValueError, match="run dimensions"):
        nets[0].forward_state({k: v.unsqueeze(0) for k, v in params.items()}, x, xlead=1)


def _autograd_mlp(x, layers, ensemble):
    """The reference: the same network layer by layer under autograd, in float64."""
    h = x.double()
    for i, (w, b) in enumerate(layers):
        w, b = w.double(), b.double()
        if ensemble:
            h = torch.baddbmm(b, h.expand(w.shape[0], *h.shape) if h.dim() == 2 else h, w)
        else:
            h = F.linear(h, w, b)
        h = torch.relu(h) if i < len(layers) - 1 else h
    return h


@pytest.mark.parametrize("seed", range(8))
def test_one_node_mlp_gives_autograds_values_and_gradients(seed, calls):
    """gemm.mlp (the backward written out) against autograd over random widths, depths, layouts,
    shared or per-network inputs and every combination of which inputs need a gradient."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    ensemble = seed % 2 == 1
    dims = [[5, 256, 256, 1], [12, 300, 2], [7, 64, 128, 96, 3], [3, 256, 256, 2]][seed % 4]
    rows = [256, 512, 300, 64][seed % 4]
    n = 2
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        w = rnd(n, a, b) / a ** 0.5 if ensemble else rnd(b, a) / a ** 0.5
        layers.append((w, rnd(n, 1, b) * 0.1 if ensemble else rnd(b) * 0.1))
    x = rnd(n, rows, dims[0]) if ensemble and seed % 4 == 3 else rnd(rows, dims[0])
    need_x, need_p = seed % 3 != 0, seed not in (2, 5)  # the actor loss reads the critic with detached weights
    x.requires_grad_(need_x)
    for w, b in layers:
        w.requires_grad_(need_p)
        b.requires_grad_(need_p)
    y = gemm.mlp(x, layers, ensemble=ensemble)
    ref = _autograd_mlp(x, layers, ensemble)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert float((y.detach().double() - ref.detach()).norm()) <= 1e-5 * float(ref.detach().norm())
    with torch.no_grad():  # no graph recorded: the same products, the same bits
        assert torch.equal(gemm.mlp(x, layers, ensemble=ensemble), y.detach())
    inputs = ([x] if need_x else []) + ([t for wb in layers for t in wb] if need_p else [])
    if not inputs:
        assert not y.requires_grad
        return
    gy = rnd(*y.shape)
    got = torch.autograd.grad(y, inputs, gy)
    want = torch.autograd.grad(ref, inputs, gy.double())
    for a, e in zip(got, want):
        assert a.shape == e.shape and a.dtype == torch.float32
        assert float((a.double() - e.double()).norm()) <= 1e-5 * float(e.double().norm()) + 1e-12
    big = any(rows * a * b >= gemm.MIN_MACS for a, b in zip(dims[:-1], dims[1:]))
    assert bool(calls) == big, "the large products, and only they, go to oneDNN"
    again = torch.autograd.grad(gemm.mlp(x, layers, ensemble=ensemble), inputs, gy)
    assert all(torch.equal(a, b) for a, b in zip(got, again)), "the same call gives the same bits"


def test_one_node_mlp_inside_vmap_is_the_layer_by_layer_network():
    layers = [(torch.randn(3, 2, 8, 16), torch.randn(3, 2, 1, 16)), (torch.randn(3, 2, 16, 1), torch.randn(3, 2, 1, 1))]
    x = torch.randn(3, 10, 8)
    out = torch.func.vmap(lambda xx, w0, b0, w1, b1: gemm.mlp(xx, [(w0, b0), (w1, b1)], ensemble=True))(
        x, layers[0][0], layers[0][1], layers[1][0], layers[1][1])
    for k in range(3):
        want = _autograd_mlp(x[k], [(w[k], b[k]) for w, b in layers], True)
        torch.testing.assert_close(out[k].double(), want, rtol=1e-5, atol=1e-5)


def test_a_bias_of_any_strides_and_an_active_transform(calls):
    x, w = torch.randn(512, 512), torch.randn(256, 512)
    for b in (torch.randn(512)[::2], torch.randn(1).expand(256)):  # oneDNN reads a bias as contiguous
        torch.testing.assert_close(gemm.linear(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-3)
    assert calls
    net = PlainMLP(8, 2, (256, 256))
    xs = torch.randn(300, 8)
    out = torch.func.vmap(lambda s: s * net(xs))(torch.tensor([1.0, 2.0]))  # no tensor of the net is wrapped
    torch.testing.assert_close(out[1], 2 * net(xs), rtol=1e-5, atol=1e-5)


def test_stacks_of_flat_critics_of_every_kind_evaluate_each_runs_own(calls):
    """The flat plain networks a stack runs by forward_state on the CPU (the ensemble, an actor) and
    the ones it vmaps (a pair of separate flat critics; any network off the CPU)."""
    import gymnasium as gym

    from eqtrade.agents.sac import TwinCritic
    from eqtrade.agents.stack import StackedModule
    from eqtrade.nn import build_actor, build_critic

    torch.manual_seed(0)
    obs_space, act_space = gym.spaces.Box(-1, 1, (6,)), gym.spaces.Box(-1, 1, (2,))
    obs, act = torch.randn(2, 64, 6), torch.rand(2, 64, 2) * 2 - 1
    pairs = [TwinCritic(build_critic("plain", obs_space, act_space), build_critic("plain", obs_space, act_space), False)
             for _ in range(2)]
    ensembles = [TwinCritic(None, None, False, EnsembleMLP(8, (256, 256))) for _ in range(2)]
    actors = [build_actor("plain", obs_space, act_space) for _ in range(2)]
    assert not pairs[0].native_stack and ensembles[0].native_stack and actors[0].native_stack
    for nets, args in ((pairs, (obs, act)), (ensembles, (obs, act)), (actors, (obs,))):
        out = StackedModule(nets)(*args)
        for k, net in enumerate(nets):
            own = net(*(a[k] for a in args))
            for o, e in zip(out if isinstance(out, tuple) else (out,), own if isinstance(own, tuple) else (own,)):
                if net.native_stack:  # the run's own products: its bits
                    assert torch.equal(o[k], e)
                else:
                    torch.testing.assert_close(o[k], e, rtol=1e-5, atol=1e-5)
    meta = EnsembleMLP(8, (16,)).to("meta")
    assert not meta.native_stack and not build_actor("plain", obs_space, act_space).to("meta").native_stack
