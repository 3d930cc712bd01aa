"""Matrix products for the networks' large layers: oneDNN's kernels where they beat torch's BLAS.

torch's CPU wheels compute `F.linear` / `torch.mm` with Intel MKL, which on AMD processors runs
its AVX2 code path even where the processor has AVX-512 (the 2-core development machine, an AMD
EPYC: about 87 GFLOP/s on a [256, 256] @ [256, 256] product on one core). The same wheels ship
oneDNN, whose fp32 kernels pick the instruction set by feature, not vendor: about 2x faster on
that product there (`bench/bench_stack.py gemm` prints the comparison of the machine it runs
on). `linear` computes `x @ w.T + b` in full fp32 with oneDNN's matrix product
(`torch.ops.mkldnn._linear_pointwise`, the op torch's own compiler emits for CPU linear layers)
forward and backward where the product is large (at least `MIN_MACS` multiply-adds, where the
op's ~15 µs of fixed cost is repaid), and with `F.linear` everywhere else: small products, other
devices and dtypes, inside `torch.func` transforms (vmap) and when `EQTRADE_ONEDNN=0`. The two
kernels sum in different orders, so their results differ in the last bits (about 1e-7 relative),
as any two BLAS libraries' do; each is deterministic for a given shape and thread count.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

#: products with fewer multiply-adds (rows x in x out) than this go to F.linear: below it oneDNN's
#: fixed cost per call outweighs its faster kernel (a [256, 64] x [64, 256] product is about even
#: on the development machine at one and two threads)
MIN_MACS = 1 << 22

_ENABLED: list[bool] = []  # [whether oneDNN is used], decided at the first call


def onednn_enabled() -> bool:
    """Whether `linear` uses oneDNN: the op exists in this torch build, computes a probe product
    correctly, and `EQTRADE_ONEDNN` is not "0" (read at the first call; `use_onednn` changes it)."""
    if not _ENABLED:
        _ENABLED.append(os.environ.get("EQTRADE_ONEDNN", "1").strip() != "0" and _probe())
    return _ENABLED[0]


def use_onednn(flag: bool) -> bool:
    """Switch oneDNN's products on (where the op works) or off for this process; returns the old
    setting (benchmarks compare the two kernels in one process)."""
    old = onednn_enabled()
    _ENABLED[0] = bool(flag) and _probe()
    return old


def _probe() -> bool:
    try:
        op = torch.ops.mkldnn._linear_pointwise
        if not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=g) for s in ((64, 48), (40, 48), (40,)))
        y = op(x, w.t().contiguous().t(), b, "none", [], "")
        ref = x.double() @ w.double().t() + b.double()
        return bool(y.dtype == torch.float32 and y.shape == ref.shape and torch.allclose(y.double(), ref, rtol=1e-5, atol=1e-5))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def backend() -> str:
    """The kernel `linear` uses for large products in this process (for benchmark headers)."""
    return "oneDNN" if onednn_enabled() else "torch (F.linear)"


def wrapped(*ts) -> bool:
    """Whether a torch.func transform (vmap, grad) is active or any tensor is one's wrapper: those
    calls go to F.linear (the autograd Functions here have no vmap rule)."""
    if torch._C._are_functorch_transforms_active():
        return True
    is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return any(t is not None and is_wrapped(t) for t in ts)


def _fast(x: torch.Tensor, w: torch.Tensor) -> bool:
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    return (rows * w.shape[0] * w.shape[1] >= MIN_MACS and x.dtype == torch.float32 and w.dtype == torch.float32
            and x.device.type == "cpu" and w.device.type == "cpu" and x.dim() >= 2 and w.dim() == 2
            and onednn_enabled())


def _product(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, relu: bool = False) -> torch.Tensor:
    """x @ w.T (+ b) (ReLU'd) without autograd: oneDNN where it pays, else F.linear."""
    if _fast(x, w):
        if b is not None and not b.is_contiguous():  # the op reads the bias's memory as contiguous
            b = b.contiguous()
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "relu" if relu else "none", [], "")
    y = F.linear(x, w, b)
    return torch.relu_(y) if relu else y


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, relu):
        y = _product(x, w, b, relu)
        ctx.save_for_backward(x, w, y if relu else None)
        ctx.has_bias, ctx.relu = b is not None, relu
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, w, y = ctx.saved_tensors
        if ctx.relu:
            gy = torch.ops.aten.threshold_backward(gy, y, 0.0)
        gx = gw = gb = None
        g2 = gy.reshape(-1, gy.shape[-1])
        if ctx.needs_input_grad[0]:
            gx = _product(g2, w.t(), None).view(x.shape)  # gy @ w
        if ctx.needs_input_grad[1]:
            gw = _product(g2.t(), x.reshape(-1, x.shape[-1]).t(), None)  # gy.T @ x: [out, in]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb, None


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, relu: bool = False) -> torch.Tensor:
    """`F.linear(x, w, b)` (then ReLU if `relu`): x [..., in], w [out, in] (any strides), b [out]
    or None; by oneDNN forward and backward where the product is large enough to gain (the
    module's note), the ReLU then fused into the product."""
    if wrapped(x, w, b) or not _fast(x, w):
        y = F.linear(x, w, b)
        return torch.relu(y) if relu else y
    if not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad))):
        return _product(x, w, b, relu)
    return _Linear.apply(x, w, b, relu)


class _MLP(torch.autograd.Function):
    """A whole ReLU MLP (or n of them, the twin critics) as one autograd node: the forward by
    `linear`'s products, the backward written out (each layer's weight, bias and input gradients
    by the same products), so that a backward pass costs one node instead of a few per layer
    (the autograd engine's per-node work was about a third of a Pendulum SAC update)."""

    @staticmethod
    def forward(ctx, x, ensemble, *params):
        ws, bs = params[0::2], params[1::2]
        n = ws[0].shape[0] if ensemble else 1
        last = len(ws) - 1
        outs, acts = [], []
        for j in range(n):
            h = x[j] if (ensemble and x.dim() == 3) else x
            hs = [h]
            for i, (w, b) in enumerate(zip(ws, bs)):
                w2, b2 = (w[j].t(), b[j, 0]) if ensemble else (w, b)
                h = _product(h, w2, b2, relu=i < last)
                hs.append(h)
            outs.append(h)
            acts.append(hs[:-1])  # each layer's input (post-ReLU for the hidden ones)
        if ctx is not None:  # None: called without autograd (mlp, nothing needing a gradient)
            ctx.ensemble, ctx.n, ctx.xdim = ensemble, n, x.dim()
            ctx.save_for_backward(*params, *[a for hs in acts for a in hs])
        return torch.stack(outs) if ensemble else outs[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        saved = ctx.saved_tensors
        k = len(saved) // (2 + ctx.n)  # layers: 2k parameters, then n x k layer inputs
        params, acts = saved[: 2 * k], saved[2 * k:]
        ws = params[0::2]
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[2:]
        gws = [[] for _ in range(k)]
        gbs = [[] for _ in range(k)]
        gxs = []
        for j in range(ctx.n):
            hs = acts[j * k:(j + 1) * k]
            g = gy[j] if ctx.ensemble else gy
            for i in range(k - 1, -1, -1):
                h = hs[i]
                if need_p[2 * i]:  # ensemble: [in, out] = h.T @ g; linear: [out, in] = g.T @ h
                    gws[i].append(_product(h.t(), g.t(), None) if ctx.ensemble else _product(g.t(), h.t(), None))
                if need_p[2 * i + 1]:
                    gbs[i].append(g.sum(0, keepdim=ctx.ensemble))
                if i > 0 or need_x:
                    w = ws[i][j] if ctx.ensemble else ws[i].t()  # g @ W.T (ensemble) or g @ W (linear)
                    gh = _product(g, w, None)
                    g = torch.ops.aten.threshold_backward(gh, h, 0.0) if i > 0 else gh
            if need_x:
                gxs.append(g)
        if need_x:
            gx = (torch.stack(gxs) if ctx.xdim == 3 else sum(gxs[1:], gxs[0])) if ctx.ensemble else gxs[0]
        else:
            gx = None
        grads = []
        for i in range(k):
            for lst in (gws[i], gbs[i]):
                grads.append((torch.stack(lst) if ctx.ensemble else lst[0]) if lst else None)
        return (gx, None, *grads)


def mlp(x: torch.Tensor, layers, ensemble: bool = False) -> torch.Tensor:
    """A ReLU MLP's output, as one autograd node (`_MLP`) on the CPU outside torch.func transforms,
    else layer by layer. layers: (weight, bias) pairs; `ensemble` False: nn.Linear's
    layout (weight [out, in], bias [out]), x [..., in] -> [..., out]; True: n networks' stacked
    (weights [n, in, out], biases [n, 1, out]), x [B, in] (shared) or [n, B, in] -> [n, B, out]."""
    flat = [t for wb in layers for t in wb]
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *flat))
    one_node = x.device.type == "cpu" and not wrapped(x, *flat) and (ensemble or x.dim() == 2)
    if one_node and not grad:
        return _MLP.forward(None, x, ensemble, *flat)  # no graph to record: the same products
    if not one_node:  # inside a transform, off the CPU (one batched product per layer), other ranks
        last = len(layers) - 1
        h = x
        for i, (w, b) in enumerate(layers):
            if ensemble:
                h = torch.baddbmm(b, h.expand(w.shape[0], *h.shape) if h.dim() == 2 else h, w)
                h = torch.relu(h) if i < last else h
            else:
                h = linear(h, w, b, relu=i < last)
        return h
    return _MLP.apply(x, ensemble, *flat)


class Linear(torch.nn.Linear):
    """`nn.Linear` (the same parameters, initialisation and state-dict names) whose product is
    `linear`'s: oneDNN's where it is large (DrQ-v2's trunk: a [256, 39 200] x [39 200, 50] product)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def mlp_per_run(layers, x: torch.Tensor, xlead: int = 0, ensemble: bool = False) -> torch.Tensor:
    """`mlp` for each run of a stack, one run at a time (the products each run computes alone):
    layers with leading run dimensions L (weights [*L, out, in], or [*L, n, in, out] for an
    ensemble), x [*L, B, in] (xlead = len(L)) or [B, in] (xlead 0: shared by the runs);
    outputs stacked [*L, ...]."""
    lead = layers[0][0].shape[:-(3 if ensemble else 2)]
    if xlead not in (0, len(lead)):
        raise ValueError(f"a stack's MLP takes inputs with all {len(lead)} run dimensions or none, not {xlead}")
    runs = lambda v: v.reshape(-1, *v.shape[len(lead):]).unbind(0)  # noqa: E731
    per_run = list(zip(*[zip(runs(w), runs(b)) for w, b in layers]))
    xs = runs(x) if xlead else [x] * len(per_run)
    out = [mlp(xr, list(lr), ensemble=ensemble) for xr, lr in zip(xs, per_run)]
    return torch.stack(out).reshape(*lead, *out[0].shape)
