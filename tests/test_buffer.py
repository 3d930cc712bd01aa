"""The replay buffer: stacked sampling (many runs' buffers in one batch) draws and returns exactly
what each buffer's own sampling does."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from eqtrade.agents.buffer import ReplayBuffer


def _filled(seed: int, n: int, obs_shape=(6,), obs_dtype=np.float32, extra_dim=3, n_step=1) -> ReplayBuffer:
    rng = np.random.default_rng(100 + seed)
    b = ReplayBuffer(50, obs_shape, (2,), seed=seed, gamma=0.9, extra_dim=extra_dim, obs_dtype=obs_dtype, n_step=n_step)
    for t in range(n):
        obs = (rng.integers(0, 255, obs_shape) if obs_dtype == np.uint8 else rng.normal(size=obs_shape)).astype(obs_dtype)
        b.add(obs, rng.normal(size=2), float(rng.normal()), obs, bool(rng.random() < 0.2), bool(rng.random() < 0.1),
              rng.normal(size=extra_dim) if extra_dim else None)
    return b


@pytest.mark.parametrize("case", [dict(), dict(obs_shape=(3, 4, 4), obs_dtype=np.uint8, extra_dim=0), dict(n_step=3)],
                         ids=["float-extras", "pixels", "n-step"])
def test_a_stacked_sample_is_each_buffers_own_sample_stacked(case):
    """Buffers of different fill (one wrapped around) sampled as one stack: the same tensors, dtypes
    and random-stream positions as sampling each alone and stacking."""
    for fills in (((0, 20), (1, 50), (2, 73)), ((4, 30),)):  # a stack of one keeps its run axis
        bufs = [_filled(s, n, **case) for s, n in fills]
        alone = copy.deepcopy(bufs)
        for _ in range(3):
            got = ReplayBuffer.sample_stacked(bufs, 16)
            want = [b.sample(16) for b in alone]
            assert set(got) == set(want[0])
            for k in got:
                ref = torch.stack([w[k] for w in want])
                assert got[k].shape[:2] == (len(bufs), 16)
                assert got[k].dtype == ref.dtype and torch.equal(got[k], ref), k
        assert [b.rng.bit_generator.state for b in bufs] == [b.rng.bit_generator.state for b in alone]


def test_one_buffers_sample_holds_what_was_stored():
    b = _filled(0, 10)
    out = b.sample(64)
    idx = np.random.default_rng(0).integers(0, 10, size=64)  # the buffer's stream, seed 0
    np.testing.assert_array_equal(out["obs"].numpy(), b.obs[idx])
    np.testing.assert_array_equal(out["next_obs"].numpy(), b.next_obs[idx])
    np.testing.assert_array_equal(out["extras"].numpy(), b.extras[idx])
    np.testing.assert_allclose(out["discount"].numpy(), 0.9 * (1 - b.terminated[idx]))
    assert out["obs"].dtype == torch.float32 and out["discount"].shape == (64,)


@pytest.mark.parametrize("n_step", [1, 3])
def test_observations_sampled_as_rows_are_the_flat_sample_in_feature_major_memory(n_step):
    """sample(rows=(F, N)): observations [B, F, N] holding the flat sample's numbers
    (eqtrade.nn.asset.as_rows), in feature-major memory ([F, B, N] contiguous per run), alone and
    stacked; the other tensors and the random streams as without rows."""
    from eqtrade.nn.asset import as_rows

    F, N = 3, 4
    for fills in (((0, 20), (1, 50), (2, 73)), ((4, 30),)):
        bufs = [_filled(s, n, obs_shape=(F * N,), n_step=n_step) for s, n in fills]
        flat = copy.deepcopy(bufs)
        got, want = ReplayBuffer.sample_stacked(bufs, 16, rows=(F, N)), ReplayBuffer.sample_stacked(flat, 16)
        one, one_flat = bufs[0].sample(16, rows=(F, N)), flat[0].sample(16)
        for g, w, lead in ((got, want, (len(bufs),)), (one, one_flat, ())):
            assert set(g) == set(w)
            for k in g:
                if k in ("obs", "next_obs"):
                    assert g[k].shape == (*lead, 16, F, N)
                    assert torch.equal(g[k], w[k].reshape(*lead, 16, F, N)) and torch.equal(g[k], as_rows(w[k], F, N))
                    assert g[k].transpose(-3, -2).is_contiguous()  # [..., F, B, N] memory
                else:
                    assert torch.equal(g[k], w[k]), k
        assert [b.rng.bit_generator.state for b in bufs] == [b.rng.bit_generator.state for b in flat]


def _thp_eligible(a: np.ndarray) -> bool | None:
    """Whether the memory mapping holding array `a` may use transparent huge pages (the kernel's
    THPeligible in /proc/self/smaps); None where the kernel does not say."""
    addr = a.ctypes.data
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith("THPeligible:"):
            return line.split()[1] == "1"
    return None


def _thp_mode() -> str | None:
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return text[text.index("[") + 1 : text.index("]")]


@pytest.mark.parametrize("huge", ["1", "0", None])
def test_replay_arrays_are_zeros_and_large_ones_are_advised_huge_pages(huge, monkeypatch):
    """The replay's large observation arrays are ordinary zero-filled writable arrays; with
    EQTRADE_HUGEPAGES=1, where the kernel has THP in madvise mode, they sit in memory advised to
    use huge pages (otherwise, and for small arrays, np.zeros; off by default)."""
    from eqtrade.agents.buffer import HUGE_MIN_BYTES, zeros

    if huge is None:  # the default: off
        monkeypatch.delenv("EQTRADE_HUGEPAGES", raising=False)
    else:
        monkeypatch.setenv("EQTRADE_HUGEPAGES", huge)
    big = zeros((HUGE_MIN_BYTES // 4 // 100 + 1, 100), np.float32)
    small = zeros((10, 3), np.int64)
    for a, shape, dtype in ((big, (HUGE_MIN_BYTES // 400 + 1, 100), np.float32), (small, (10, 3), np.int64)):
        assert a.shape == shape and a.dtype == dtype and a.flags.writeable and a.flags.c_contiguous
        assert not a.any()
    big[-1, -1] = 3.5
    assert big.sum() == 3.5
    b = ReplayBuffer(HUGE_MIN_BYTES // 4 // 50 + 1, (50,), (2,))
    b.add(np.ones(50), np.zeros(2), 1.0, np.full(50, 2.0), False, False)
    got = b.sample(4)
    assert torch.equal(got["obs"], torch.ones(4, 50)) and torch.equal(got["next_obs"], torch.full((4, 50), 2.0))
    import mmap

    def owner(a):
        while isinstance(a, np.ndarray) and a.base is not None:
            a = a.base
        return a.obj if isinstance(a, memoryview) else a  # np.frombuffer keeps a view of the buffer

    # on (where mmap can advise huge pages: Linux): the large arrays' memory is an anonymous
    # mapping of their own; off, small, or elsewhere: np.zeros
    on = huge == "1" and all(hasattr(mmap, a) for a in ("MADV_HUGEPAGE", "MAP_PRIVATE", "MAP_ANONYMOUS"))
    assert isinstance(owner(big), mmap.mmap) is on and isinstance(owner(b.obs), mmap.mmap) is on
    assert small.base is None
    if huge == "1" and _thp_mode() == "madvise" and _thp_eligible(big) is not None:
        # advised: the kernel may back it with huge pages (np.zeros' memory may or may not be,
        # depending on what the allocator's heap was advised before, so "0" is not checked here)
        assert _thp_eligible(big) and _thp_eligible(b.obs)


@pytest.mark.parametrize("case", [dict(), dict(obs_shape=(3, 4, 4), obs_dtype=np.uint8, extra_dim=0)], ids=["float", "pixels"])
def test_a_saved_buffer_is_its_stored_rows_as_tensors_and_loads_back(case, tmp_path):
    """state_dict holds the stored rows as tensors of their own (torch.save writes their bytes, not
    a pickle, and not the whole capacity a view would carry); it loads back into an empty buffer
    through a checkpoint file, and so does the numpy-array state of checkpoints written before."""
    b = _filled(0, 30, **case)  # capacity 50, 30 stored
    s = b.state_dict()
    for k in ("obs", "next_obs", "actions", "rewards", "terminated", "episode_end") + (("extras",) if s["extras"] is not None else ()):
        assert isinstance(s[k], torch.Tensor) and len(s[k]) == 30, k
        assert s[k].untyped_storage().nbytes() == s[k].nbytes, k  # own storage: 30 rows, not 50
        np.testing.assert_array_equal(s[k].numpy(), getattr(b, k)[:30])
    torch.save(s, tmp_path / "b.pt")
    old = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in s.items()}  # the format before
    for state in (torch.load(tmp_path / "b.pt", weights_only=False), old):
        c = ReplayBuffer(50, case.get("obs_shape", (6,)), (2,), seed=9, gamma=0.9, extra_dim=case.get("extra_dim", 3),
                         obs_dtype=case.get("obs_dtype", np.float32))
        c.load_state_dict(state)
        assert len(c) == 30 and c.pos == b.pos
        for k in ("obs", "next_obs", "actions", "rewards", "terminated", "episode_end"):
            np.testing.assert_array_equal(getattr(c, k), getattr(b, k))
        a1, a2 = b.sample(8), c.sample(8)
        b.rng.bit_generator.state = s["rng"]  # the same stream: the same sample
        for k in a1:
            torch.testing.assert_close(a1[k], a2[k])
