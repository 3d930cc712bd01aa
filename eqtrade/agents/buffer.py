"""A numpy replay buffer with seeded sampling and optional n-step returns."""

from __future__ import annotations

import mmap
import os

import numpy as np
import torch

from ..nn.asset import as_rows

#: with EQTRADE_HUGEPAGES=1, arrays at least this large are put on transparent huge pages
HUGE_MIN_BYTES = 16 << 20


def zeros(shape, dtype) -> np.ndarray:
    """np.zeros(shape, dtype); with EQTRADE_HUGEPAGES=1, an array of HUGE_MIN_BYTES or more in
    anonymous memory advised to use transparent huge pages (Linux, THP in "madvise" or "always"
    mode). A sample reads rows at random all over the replay, and with 4 KiB pages nearly every row
    also misses the TLB: on filled buffers huge pages sample 1.2-1.35x faster (`bench/bench_stack.py
    sample`), but whole training runs, whose buffers grow page by page, measured no gain
    (`bench_stack.py anchor`: stacks 108-120 s with them, 101 s without), so it is off by default."""
    shape = tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if (nbytes < HUGE_MIN_BYTES or os.environ.get("EQTRADE_HUGEPAGES", "0") != "1"
            or not all(hasattr(mmap, a) for a in ("MADV_HUGEPAGE", "MAP_PRIVATE", "MAP_ANONYMOUS"))):
        return np.zeros(shape, dtype)
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # zero-filled
    try:
        m.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # THP off in this kernel: ordinary pages
        pass
    return np.frombuffer(m, dtype=dtype).reshape(shape)


class ReplayBuffer:
    """Circular buffer of (obs, action, reward, next_obs, terminated) transitions.

    With n_step > 1, `sample` returns n-step transitions: the discounted sum of up to n rewards,
    the observation n steps later and the discount γ^k to apply to its value (0 if an episode
    terminated inside the n steps; truncation cuts the sum without zeroing the bootstrap).

    window = (W, N): the observations begin, along their first axis, with a window of W blocks of
    N entries (the trading envs' time-major returns, `AssetAxis` block "returns", rows of N
    assets; a frame stack's W frames of N channels, `sliding_window_of`), which slides by one
    block per step: the next observation's first W - 1 blocks are the observation's last W - 1.
    While every stored transition shows this (checked exactly at each `add`), the buffer keeps of
    each next observation only what is new (its last block and what follows the window: about
    half the replay's memory for the portfolio envs, a third for 3 stacked frames) and samples the
    rest from the observation: the same numbers as storing it whole. The first transition that
    does not slide (a wrapper that redraws its noise, say) turns the buffer into one that stores
    whole next observations, the ones already stored rebuilt; nothing else changes.
    """

    def __init__(self, capacity: int, obs_shape, action_shape, action_dtype=np.float32, seed: int = 0,
                 n_step: int = 1, gamma: float = 0.99, extra_dim: int = 0, obs_dtype=np.float32,
                 window: tuple[int, int] | None = None):
        self.capacity, self.n_step, self.gamma = int(capacity), int(n_step), float(gamma)
        # pixel observations are stored as uint8 (a quarter of float32's memory)
        self.obs = zeros((self.capacity, *obs_shape), obs_dtype)
        #: (N, kept): the next observation's first `kept` entries (along its first axis) are the observation's from N on
        self._slide = None
        obs_shape = tuple(int(v) for v in obs_shape)
        if window is not None:
            W, N = (int(v) for v in window)
            if not obs_shape or W < 2 or N < 1 or W * N > obs_shape[0]:
                raise ValueError(f"a sliding window of {W} blocks of {N} does not fit observations of shape {obs_shape}")
            self._slide = (N, (W - 1) * N)
        # next_obs: the whole next observations, or None while they slide (next_new: their new part)
        self.next_obs = None if self._slide else zeros((self.capacity, *obs_shape), obs_dtype)
        self.next_new = (zeros((self.capacity, obs_shape[0] - self._slide[1], *obs_shape[1:]), obs_dtype)
                         if self._slide else None)
        self.actions = np.zeros((self.capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.episode_end = np.zeros(self.capacity, dtype=bool)  # terminated or truncated
        # per-transition side information from the env (e.g. the next day's raw returns, from
        # which the portfolio env computes the exact reward of any action); n-step ignores it
        self.extras = np.zeros((self.capacity, extra_dim), dtype=np.float32) if extra_dim else None
        self.pos, self.full = 0, False
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool, extra=None) -> None:
        i = self.pos
        if self.extras is not None:
            if extra is None:
                raise ValueError("this buffer stores per-transition extras (the env's ExactReward.last_extras()); got none")
            self.extras[i] = extra
        if self.next_obs is None:
            N, kept = self._slide
            nxt = np.asarray(next_obs)
            if np.array_equal(nxt[:kept], np.asarray(obs)[N : N + kept]):
                self.next_new[i] = nxt[kept:]
            else:
                self._store_whole()
        if self.next_obs is not None:
            self.next_obs[i] = next_obs
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.terminated[i] = float(terminated)
        self.episode_end[i] = terminated or truncated
        self.pos = (i + 1) % self.capacity
        self.full = self.full or self.pos == 0

    @property
    def slides(self) -> bool:
        """Whether the next observations are kept as their new part only (see the class docstring)."""
        return self.next_obs is None

    def _store_whole(self) -> None:
        """From now on store whole next observations; the ones stored so far rebuilt into them."""
        n = len(self)
        whole = zeros(self.obs.shape, self.obs.dtype)
        whole[:n] = self._next_rows(np.arange(n))
        self.next_obs, self.next_new = whole, None

    def _next_rows(self, idx: np.ndarray) -> np.ndarray:
        """The next observations of transitions idx, whole."""
        if self.next_obs is not None:
            return self.next_obs[idx]
        N, kept = self._slide
        return np.concatenate([self.obs[idx, N : N + kept], self.next_new[idx]], axis=1)

    def head(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first min(n, len) stored observations and rewards (SAC's automatic α reads them)."""
        n = min(len(self), int(n))
        return self.obs[:n], self.rewards[:n]

    def sample(self, batch_size: int, device=None, rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """A batch of `batch_size` transitions (n-step returns when n_step > 1), as tensors on
        `device` (default: the CPU). rows = (F, N): observations [B, F·N] come as their rows
        [B, F, N] in feature-major memory, as `eqtrade.nn.asset.as_rows` gives them (gathered
        straight into that layout: no flat copy)."""
        return to_device(self._sample(batch_size, rows), device)

    def _sample(self, batch_size: int, rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        n = len(self)
        idx = self.rng.integers(0, n, size=batch_size)
        if self.n_step == 1:
            return self._gather([self], [idx], stacked=False, rows=rows)
        return _as_rows(self._n_step(idx), rows)

    def _n_step(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        batch_size = len(idx)
        ret = np.zeros(batch_size, dtype=np.float32)
        disc = np.ones(batch_size, dtype=np.float32)
        last = idx.copy()
        alive = np.ones(batch_size, dtype=bool)
        newest = (self.pos - 1) % self.capacity
        for k in range(self.n_step):
            j = (idx + k) % self.capacity
            ret += alive * disc * self.rewards[j]
            last = np.where(alive, j, last)
            disc = np.where(alive, disc * self.gamma, disc)
            ended = self.episode_end[j] | (j == newest)  # stop at episode ends and at the newest data
            alive &= ~ended
        term = self.terminated[last]
        return {"obs": torch.from_numpy(self.obs[idx]), "actions": torch.from_numpy(self.actions[idx]),
                "rewards": torch.from_numpy(ret), "next_obs": torch.from_numpy(self._next_rows(last)),
                "discount": torch.from_numpy(disc * (1.0 - term))}

    #: what a one-step sample gathers: (key, array attribute)
    _FIELDS = (("obs", "obs"), ("actions", "actions"), ("rewards", "rewards"), ("next_obs", "next_obs"),
               ("discount", "terminated"), ("extras", "extras"))

    @staticmethod
    def _gather(buffers: list["ReplayBuffer"], idx: list[np.ndarray], stacked: bool = True,
                rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """One-step transitions idx[k] of buffers[k]: tensors stacked [K, B, ...] (stacked=False:
        one buffer's [B, ...]), each gathered straight into its place (torch.index_select: no
        stacking copy); rows = (F, N): the observations as rows (see `sample`), each buffer's
        gathered into a scratch [B, F, N] and copied transposed into its place (one run's batch
        at a time stays in cache: a transposing copy of the whole stacked batch does not)."""
        K, B = len(buffers), len(idx[0])
        index = [torch.from_numpy(np.asarray(i, dtype=np.int64)) for i in idx]
        out: dict[str, torch.Tensor] = {}
        for key, attr in ReplayBuffer._FIELDS:
            if key in ("obs", "next_obs"):
                o = ReplayBuffer._gather_obs(buffers, index, key == "next_obs", rows, out.get("obs"))
            elif getattr(buffers[0], attr) is None:
                continue
            else:
                arrays = [torch.from_numpy(getattr(b, attr)) for b in buffers]
                o = torch.empty((K, B, *arrays[0].shape[1:]), dtype=arrays[0].dtype, device="cpu")  # moved by sample
                for k in range(K):
                    torch.index_select(arrays[k], 0, index[k], out=o[k])
                    if key == "discount":  # γ (1 - terminated), each buffer's own γ
                        o[k] = buffers[k].gamma * (1.0 - o[k])
            out[key] = o
        return out if stacked else {k: v[0] for k, v in out.items()}

    @staticmethod
    def _gather_obs(buffers: list["ReplayBuffer"], index: list[torch.Tensor], nxt: bool,
                    rows: tuple[int, int] | None, obs: torch.Tensor | None) -> torch.Tensor:
        """The observations (nxt: the next ones) of transitions index[k] of buffers[k], [K, B, ...]
        (rows: [K, B, F, N] in feature-major memory); a sliding buffer's next observations from
        the gathered observations `obs` (their window rows) and its stored new part."""
        K, B = len(buffers), len(index[0])
        dtype = torch.from_numpy(buffers[0].obs[:0]).dtype
        if rows is None:
            o = torch.empty((K, B, *buffers[0].obs.shape[1:]), dtype=dtype, device="cpu")
            for k, b in enumerate(buffers):
                if nxt and b.next_obs is None:
                    n, kept = b._slide
                    o[k, :, :kept].copy_(obs[k, :, n : n + kept])
                    o[k, :, kept:] = torch.from_numpy(b.next_new).index_select(0, index[k])
                else:
                    torch.index_select(torch.from_numpy(b.next_obs if nxt else b.obs), 0, index[k], out=o[k])
            return o
        F, N = rows
        o = torch.empty((K, F, B, N), dtype=dtype, device="cpu")
        scratch = {}  # each run's batch gathered into [B, rows, N], then copied transposed into its place
        for k, b in enumerate(buffers):  # (one run's batch at a time stays in cache; the whole stack's does not)
            if nxt and b.next_obs is None:
                kept = b._slide[1] // N  # the window's rows 1..W-1 are the next observation's first W - 1
                X = obs.transpose(-3, -2)  # [K, F, B, N]: a view
                o[k, :kept].copy_(X[k, 1 : 1 + kept])
                src, at = torch.from_numpy(b.next_new).view(-1, F - kept, N), kept
            else:
                src, at = torch.from_numpy(b.next_obs if nxt else b.obs).view(-1, F, N), 0
            s = scratch.setdefault(F - at, torch.empty((B, F - at, N), dtype=dtype, device="cpu"))
            torch.index_select(src, 0, index[k], out=s)
            o[k, at:].copy_(s.transpose(0, 1))
        return o.transpose(-3, -2)  # [K, B, F, N], feature-major memory

    @staticmethod
    def sample_stacked(buffers: list["ReplayBuffer"], batch_size: int,
                       rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """A batch of each buffer stacked [K, B, ...]: buffer k's rows drawn from its own stream as
        its `sample` draws them (the same tensors as stacking their samples); rows: see `sample`."""
        if any(b.n_step != 1 for b in buffers):
            outs = [b._sample(batch_size) for b in buffers]
            return _as_rows({k: torch.stack([o[k] for o in outs]) for k in outs[0]}, rows)
        return ReplayBuffer._gather(buffers, [b.rng.integers(0, len(b), size=batch_size) for b in buffers], rows=rows)

    def state_dict(self) -> dict:
        """The stored transitions as tensors of their own (copies of the first len rows) and the
        position and random stream. Tensors, not numpy arrays: torch.save writes a tensor's bytes
        as they are, where it pickles an array (10x slower: a 200 MB replay took 3.3 s to
        checkpoint, 0.17 s as tensors; bench/bench_checkpoint.py). Not views of the buffer:
        torch.save would write a view's whole storage, the full capacity. A sliding buffer saves
        its next observations' new part ("next_new") in place of "next_obs"."""
        n = len(self)
        t = lambda a: None if a is None else torch.from_numpy(a[:n].copy())  # noqa: E731
        return {"obs": t(self.obs), "next_obs": t(self.next_obs), "actions": t(self.actions),
                "rewards": t(self.rewards), "terminated": t(self.terminated),
                "episode_end": t(self.episode_end), "pos": self.pos, "full": self.full,
                "rng": self.rng.bit_generator.state, "extras": t(self.extras),
                **({"next_new": t(self.next_new), "slide": self._slide} if self.next_new is not None else {})}

    def load_state_dict(self, s: dict) -> None:
        """`state_dict`'s contents (tensors; numpy arrays in checkpoints written before), whichever
        way the next observations were saved (whole, or a sliding buffer's new part)."""
        arr = lambda v: v.numpy() if isinstance(v, torch.Tensor) else v  # noqa: E731
        n = len(s["rewards"])
        for k in ("obs", "actions", "rewards", "terminated", "episode_end"):
            getattr(self, k)[:n] = arr(s[k])
        if self.extras is not None and s.get("extras") is not None:
            self.extras[:n] = arr(s["extras"])
        saved_new = s.get("next_new")
        if self.next_obs is None and saved_new is None:  # saved whole: keep sliding if they all slide
            nxt = arr(s["next_obs"])
            N, kept = self._slide
            if np.array_equal(nxt[:, :kept], self.obs[:n, N : N + kept]):
                self.next_new[:n] = nxt[:, kept:]
            else:
                self._store_whole()
        if self.next_obs is None:
            if saved_new is not None:
                self.next_new[:n] = arr(saved_new)
        elif saved_new is not None:  # saved sliding, loaded into a buffer that keeps them whole
            N, kept = s["slide"]
            self.next_obs[:n] = np.concatenate([self.obs[:n, N : N + kept], arr(saved_new)], axis=1)
        else:
            self.next_obs[:n] = arr(s["next_obs"])
        self.pos, self.full = s["pos"], s["full"]
        self.rng.bit_generator.state = s["rng"]


def _as_rows(batch: dict[str, torch.Tensor], rows: tuple[int, int] | None) -> dict[str, torch.Tensor]:
    """A batch's observations as rows (see `ReplayBuffer.sample`), if asked."""
    if rows is None:
        return batch
    return {k: as_rows(v, *rows) if k in ("obs", "next_obs") else v for k, v in batch.items()}


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """A sample on `device` (it is made on the CPU)."""
    if device is not None and torch.device(device).type != "cpu":
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    return batch
