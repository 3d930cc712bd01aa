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


W_, N_, EXTRA_ = 4, 3, 2  # a window of 4 rows of 3 assets, then 2 more rows (levels, the book)


def _sliding_pair(seed: int, n: int, breaks_at: int | None = None, n_step: int = 1, capacity: int = 50):
    """A sliding buffer (window=(W, N)) and a whole one fed the same transitions of a market whose
    observations are a window of a [T, N] series that slides by a row per step (episodes of 7
    steps from random starts) plus fresh rows; from step `breaks_at` on, the next observation's
    window is redrawn (it no longer slides)."""
    rng = np.random.default_rng(200 + seed)
    dim = (W_ + EXTRA_) * N_
    kw = dict(seed=seed, gamma=0.9, extra_dim=N_, n_step=n_step)
    slide = ReplayBuffer(capacity, (dim,), (N_,), window=(W_, N_), **kw)
    whole = ReplayBuffer(capacity, (dim,), (N_,), **kw)
    series = rng.normal(size=(400, N_))

    def ob(t):
        return np.concatenate([series[t - W_ + 1 : t + 1].reshape(-1), rng.normal(size=EXTRA_ * N_)])

    t = int(rng.integers(W_, 300))
    obs = ob(t)
    for step in range(n):
        nxt = ob(t + 1)
        if breaks_at is not None and step >= breaks_at:
            nxt[: (W_ - 1) * N_] = rng.normal(size=(W_ - 1) * N_)
        end = step % 7 == 6
        args = (rng.normal(size=N_), float(rng.normal()), nxt, bool(end and rng.random() < 0.5), end, rng.normal(size=N_))
        slide.add(obs, *args)
        whole.add(obs, *args)
        if end:
            t = int(rng.integers(W_, 300))
            obs = ob(t)
        else:
            t, obs = t + 1, nxt
    return slide, whole


def _same_samples(a: list, b: list, rows=None) -> None:
    for _ in range(3):
        got, want = ReplayBuffer.sample_stacked(a, 16, rows), ReplayBuffer.sample_stacked(b, 16, rows)
        one, one_want = a[0].sample(16, rows=rows), b[0].sample(16, rows=rows)
        for g, w in ((got, want), (one, one_want)):
            assert set(g) == set(w)
            for k in g:
                assert g[k].dtype == w[k].dtype and g[k].stride() == w[k].stride() and torch.equal(g[k], w[k]), k


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("rows", [None, (W_ + EXTRA_, N_)], ids=["flat", "rows"])
def test_a_sliding_buffer_samples_what_a_whole_one_does_in_half_the_memory(rows, n_step):
    """window=(W, N): while the observations' window slides, the buffer keeps only each next
    observation's new part, and samples (alone and stacked, flat or as rows, n-step, wrapped
    around) the same tensors in the same memory layout as a buffer that stores them whole."""
    pairs = [_sliding_pair(s, n, n_step=n_step) for s, n in ((0, 20), (1, 50), (2, 73))]
    slides, wholes = [p[0] for p in pairs], [p[1] for p in pairs]
    assert all(b.slides and b.next_obs is None for b in slides) and not any(b.slides for b in wholes)
    assert slides[0].next_new.shape == (50, (1 + EXTRA_) * N_)  # the window's new row and the rest
    _same_samples(slides, wholes, rows)
    assert [b.rng.bit_generator.state for b in slides] == [b.rng.bit_generator.state for b in wholes]


@pytest.mark.parametrize("rows", [None, (W_ + EXTRA_, N_)], ids=["flat", "rows"])
def test_a_transition_that_does_not_slide_makes_the_buffer_store_whole_next_observations(rows):
    """The first next observation whose window does not continue the observation's turns the
    buffer into one that stores them whole, the transitions stored before rebuilt: every sample
    stays the whole buffer's (also in a stack with buffers that still slide)."""
    broken, whole = _sliding_pair(0, 40, breaks_at=25)
    assert not broken.slides and broken.next_new is None
    np.testing.assert_array_equal(broken.next_obs, whole.next_obs)
    ok, ok_whole = _sliding_pair(1, 30)
    assert ok.slides
    _same_samples([broken, ok], [whole, ok_whole], rows)


def test_a_sliding_buffer_saves_its_new_parts_and_loads_from_either_format(tmp_path):
    """A sliding buffer's state holds the next observations' new parts only; it loads back into a
    sliding buffer and into a whole one, and a whole buffer's state (every checkpoint written
    before) loads into a sliding buffer, which keeps sliding when the stored rows do (and stores
    whole ones when they do not): each gives the same samples as the buffer saved."""
    slide, whole = _sliding_pair(0, 33)
    broken, broken_whole = _sliding_pair(1, 33, breaks_at=10)
    s = slide.state_dict()
    assert s["next_obs"] is None and s["next_new"].shape == (33, (1 + EXTRA_) * N_)
    torch.save(s, tmp_path / "s.pt")
    dim = (W_ + EXTRA_) * N_
    make = lambda window: ReplayBuffer(50, (dim,), (N_,), seed=5, gamma=0.9, extra_dim=N_, window=window)  # noqa: E731
    for state, window, ref, slides in ((torch.load(tmp_path / "s.pt", weights_only=False), (W_, N_), whole, True),
                                       (s, None, whole, False), (whole.state_dict(), (W_, N_), whole, True),
                                       (broken_whole.state_dict(), (W_, N_), broken_whole, False)):
        c = make(window)
        c.load_state_dict(state)
        assert c.slides is slides and len(c) == 33
        ref = copy.deepcopy(ref)
        ref.rng.bit_generator.state = c.rng.bit_generator.state
        _same_samples([c], [ref])


def test_a_window_that_does_not_fit_the_observations_is_refused():
    with pytest.raises(ValueError, match="sliding window of 5 blocks of 3"):
        ReplayBuffer(10, (12,), (3,), window=(5, 3))
    with pytest.raises(ValueError, match="does not fit observations of shape"):
        ReplayBuffer(10, (3, 4), (3,), window=(2, 3))


def test_stacked_frames_slide_in_the_buffer_and_sample_what_whole_ones_do():
    """A frame stack's observations [W·C, H, W] (uint8, as DrQ-v2 stores them) slide by one frame
    of C channels per step (episodes begin with the first frame repeated): a buffer with
    window=(W, C) keeps each next observation's new frame only, samples n-step batches equal to a
    whole buffer's, and turns whole at a frame that does not continue the stack."""
    import gymnasium as gym

    from eqtrade.envs.protocol import sliding_window_of
    from eqtrade.envs.wrappers import FrameStack

    class Frames(gym.Env):  # random 2-channel 5x4 frames
        observation_space = gym.spaces.Box(0, 255, (2, 5, 4), np.uint8)
        action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            self.rng, self.t = np.random.default_rng(seed), 0
            return self.rng.integers(0, 256, (2, 5, 4), dtype=np.uint8), {}

        def step(self, action):
            self.t += 1
            return self.rng.integers(0, 256, (2, 5, 4), dtype=np.uint8), 1.0, False, self.t % 6 == 0, {}

    env = FrameStack(Frames(), 3)
    assert sliding_window_of(env) == (3, 2) and sliding_window_of(FrameStack(Frames(), 1)) is None
    gray = gym.wrappers.TransformObservation(env, lambda o: o[:2], gym.spaces.Box(0, 255, (2, 5, 4), np.uint8))
    assert sliding_window_of(gray) is None  # reshaped outside the stack: the declaration no longer holds
    kw = dict(seed=3, gamma=0.9, n_step=3, obs_dtype=np.uint8)

    def fill(n: int, break_at: int | None = None):
        slide = ReplayBuffer(40, (6, 5, 4), (1,), window=sliding_window_of(env), **kw)
        whole = ReplayBuffer(40, (6, 5, 4), (1,), **kw)
        obs, _ = env.reset(seed=1)
        for step in range(n):
            a = np.zeros(1, np.float32)
            nxt, r, term, trunc, _ = env.step(a)
            if break_at is not None and step == break_at:
                nxt = nxt.copy()
                nxt[0, 0, 0] ^= 1  # its oldest frame no longer the observation's second
            for b in (slide, whole):
                b.add(obs, a, r, nxt, term, trunc)
            obs = env.reset(seed=step)[0] if trunc else nxt
        return slide, whole

    slide, whole = fill(55)  # wrapped around the capacity
    assert slide.slides and slide.next_new.shape == (40, 2, 5, 4) and slide.next_new.dtype == np.uint8
    _same_samples([slide], [whole])
    loaded = ReplayBuffer(40, (6, 5, 4), (1,), window=(3, 2), **kw)  # a checkpoint written whole (before)
    loaded.load_state_dict(whole.state_dict())
    assert loaded.slides
    loaded.rng.bit_generator.state = slide.rng.bit_generator.state
    _same_samples([loaded], [copy.deepcopy(slide)])
    broken, broken_whole = fill(30, break_at=20)
    assert not broken.slides
    np.testing.assert_array_equal(broken.next_obs[:30], broken_whole.next_obs[:30])
    _same_samples([broken, slide], [broken_whole, whole])
