"""Image-plane layers: exact (escnn R2Conv), relaxed group conv and relaxed steerable conv are
equivariant to every rotation/reflection of the plane at init; relaxed ones break it when moved."""

from __future__ import annotations

import pytest
import torch

from eqtrade.nn.conv2d import ImageEncoder, RelaxedSteerableConv2d, image_symmetry, transform_image
from eqtrade.nn.relaxed import RelaxedModule

SYMS = [image_symmetry(4), image_symmetry(4, dihedral=True), image_symmetry(2)]
FAMS = ["exact", "relaxed", "relaxed-steerable"]


@torch.no_grad()
def feature_error(enc, sym, x, regular=True):
    fm = enc.feature_map(x)
    errs = []
    for g in range(sym.order):
        a = enc.feature_map(transform_image(sym, x, g))
        b = transform_image(sym, fm, g, regular=regular)
        errs.append(float((a - b).norm() / b.norm()))
    return max(errs)


def test_image_transform_is_a_group_action():
    sym = image_symmetry(4, dihedral=True)
    x = torch.randn(1, 2 * sym.order, 5, 5)
    els = sym.elements
    index = {e: i for i, e in enumerate(els)}
    for a in range(sym.order):
        for b in range(sym.order):
            ab = index[els[a] @ els[b]]
            lhs = transform_image(sym, transform_image(sym, x, b, True), a, True)
            torch.testing.assert_close(lhs, transform_image(sym, x, ab, True))


@pytest.mark.parametrize("family", FAMS)
@pytest.mark.parametrize("sym", SYMS, ids=lambda s: s.name)
def test_image_encoders_are_equivariant_at_init(sym, family):
    torch.manual_seed(0)
    enc = ImageEncoder(family, sym, 3, (4, 4))
    for seed in range(2):
        x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(seed))
        assert feature_error(enc, sym, x) < 1e-5
        pooled, pooled_g = enc(x), enc(transform_image(sym, x, 1))
        torch.testing.assert_close(pooled_g, transform_image(sym, pooled[:, :, None, None], 1, True)[:, :, 0, 0],
                                   rtol=1e-5, atol=1e-6)


def test_plain_image_encoder_is_not_equivariant():
    sym = image_symmetry(4)
    enc = ImageEncoder("plain", sym, 3, (4, 4))
    assert feature_error(enc, sym, torch.randn(2, 3, 9, 9), regular=False) > 1e-2


@pytest.mark.parametrize("family", ["relaxed", "relaxed-steerable"])
def test_relaxed_image_layers_break_symmetry_when_moved(family):
    sym = image_symmetry(4)
    torch.manual_seed(0)
    enc = ImageEncoder(family, sym, 3, (4, 4))
    assert enc.regularizer().item() == 0.0
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, RelaxedModule):
                m.relaxed_weights.add_(0.3 * torch.randn_like(m.relaxed_weights))
            if isinstance(m, RelaxedSteerableConv2d):
                m.coef.add_(0.3 * torch.randn_like(m.coef))
    assert enc.regularizer().item() > 0.0
    assert feature_error(enc, sym, torch.randn(2, 3, 9, 9)) > 1e-2


@pytest.mark.parametrize("family", ["plain"] + FAMS)
def test_image_encoders_train(family):
    sym = image_symmetry(4)
    enc = ImageEncoder(family, sym, 3, (4, 4))
    (enc(torch.randn(2, 3, 9, 9)).pow(2).sum() + enc.regularizer()).backward()
    for name, p in enc.named_parameters():
        if p.requires_grad and "bias" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
