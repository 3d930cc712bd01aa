"""The one env factory: an `EnvSpec` (id + keyword arguments) -> a gymnasium env with its
observation wrappers, and the env-id vocabulary (which ids are trading, dm_control, pixels)
defined once for the whole package."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym

from ..symmetry import Symmetry, cartpole_discrete_reflection, pendulum_reflection
from ..util import OBS_NOISE

#: the trading envs: they have splits, turnover and normalised observations
TRADING_IDS = ("portfolio", "trading")
DMC_PREFIX = "dmc/"
PIXELS_PREFIX = "dmc-pixels/"

#: symmetries of gymnasium's own tasks (the learning checks use them); attached by `make_env`
KNOWN_SYMMETRIES = {"Pendulum-v1": pendulum_reflection, "CartPole-v1": cartpole_discrete_reflection}


def is_trading(env_id: str) -> bool:
    """A trading env id (portfolio, trading)."""
    return env_id in TRADING_IDS


def is_pixels(env_id: str) -> bool:
    """A dm_control task observed from pixels (dmc-pixels/DOMAIN-TASK)."""
    return env_id.startswith(PIXELS_PREFIX)


def is_dmc(env_id: str) -> bool:
    """A dm_control task, from states or pixels."""
    return env_id.startswith(DMC_PREFIX) or is_pixels(env_id)


def task_name(env_id: str) -> str:
    """DOMAIN-TASK of a dm_control id (the id itself otherwise)."""
    return env_id.removeprefix(PIXELS_PREFIX).removeprefix(DMC_PREFIX)


class WithSymmetry(gym.Wrapper):
    """Declares a known symmetry on an env that does not declare its own (gymnasium's tasks)."""

    def __init__(self, env: gym.Env, symmetry: Symmetry):
        super().__init__(env)
        self.symmetry = symmetry


#: env options that shape only the training reward (regularisers), never what the book earns:
#: every evaluation env, backtest and baseline is made without them
TRAINING_ONLY = ("turnover_penalty_bps", "risk_aversion")


@dataclass
class EnvSpec:
    """Which environment to train on: `portfolio`, `trading`, a dm_control id or any gymnasium
    id, plus keyword arguments; `eval_kwargs` override them for the evaluation env. A checkpoint
    stores this (never the env itself)."""

    id: str = "portfolio"
    kwargs: dict = field(default_factory=dict)
    eval_kwargs: dict = field(default_factory=dict)

    def make(self, evaluation: bool = False) -> gym.Env:
        return make_env(self.id, **(self.evaluation_kwargs() if evaluation else dict(self.kwargs)))

    def evaluation_kwargs(self, **over) -> dict:
        """The evaluation env's keyword arguments: `kwargs`, then `eval_kwargs`, then `over`. An
        evaluation measures what the book earns: the training-only turnover penalty and risk
        aversion are dropped."""
        kw = {**self.kwargs, **self.eval_kwargs, **over}
        return {k: v for k, v in kw.items() if k not in TRAINING_ONLY}

    def to_dict(self) -> dict:
        return {"id": self.id, "kwargs": dict(self.kwargs), "eval_kwargs": dict(self.eval_kwargs)}


def make_env(env_id: str, **kwargs) -> gym.Env:
    """An env by id, with the observation wrappers its keyword arguments ask for (see
    eqtrade.envs.wrappers): for the trading envs `normalize` (default True), `vol_window` (63) and
    `clip` (5.0): returns divided by their trailing volatility; `obs_noise` (σ, with `noise_seed`):
    for the trading envs noise on the market's returns in units of each asset's trailing
    volatility, the book exact (`MarketNoise`, with `stale_ticks` and `bad_ticks`, probabilities);
    for every other env Gaussian noise on the whole observation (`ObservationNoise`)."""
    noise = kwargs.pop("obs_noise", 0.0)
    noise_seed = kwargs.pop("noise_seed", 0)
    if is_trading(env_id):
        return trading_env(env_id, obs_noise=noise, noise_seed=noise_seed, **kwargs)
    else:
        for name in MARKET_NOISE_OPTIONS & set(kwargs):
            raise ValueError(f"{name} = {kwargs[name]!r}: market noise applies to the trading envs "
                             f"({', '.join(TRADING_IDS)}), not to {env_id!r}")
        try:
            env = gym.make(env_id, **kwargs)
        except gym.error.Error as e:
            raise ValueError(f"unknown environment {env_id!r}: use portfolio, trading, dmc/DOMAIN-TASK, "
                             f"dmc-pixels/DOMAIN-TASK or a gymnasium id ({e})") from e
        if env_id in KNOWN_SYMMETRIES and getattr(env.unwrapped, "symmetry", None) is None:
            env = WithSymmetry(env, KNOWN_SYMMETRIES[env_id]())
    return _with_noise(env, noise, noise_seed)


#: keyword arguments `make_env` takes for every env (the observation noise), and gymnasium.make's own
COMMON_OPTIONS = frozenset({"obs_noise", "noise_seed"})
#: the trading envs' market-noise options besides obs_noise (probabilities per asset and day)
MARKET_NOISE_OPTIONS = frozenset({"stale_ticks", "bad_ticks"})
GYM_MAKE_OPTIONS = frozenset({"render_mode", "max_episode_steps", "autoreset", "apply_api_compatibility",
                              "disable_env_checker"})


def env_option_names(env_id: str) -> frozenset[str] | None:
    """The keyword arguments (the [env] keys) an env id takes, read from its constructor's
    signature; None when that cannot be told (an unknown id, or a constructor taking **kwargs)."""
    import inspect

    if is_trading(env_id):
        from .portfolio import PortfolioEnv
        from .trading import TradingEnv

        fns, names = [PortfolioEnv if env_id == "portfolio" else TradingEnv], {"normalize", "vol_window", "clip", *MARKET_NOISE_OPTIONS}
        if env_id == "portfolio":
            names |= {"scale", "horizons", "vol_ref"}
    else:
        try:
            spec = gym.spec(env_id)
            from gymnasium.envs.registration import load_env_creator

            creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
        except Exception:  # an unknown id, or an entry point that cannot be imported here
            return None
        fns, names = [creator], set(GYM_MAKE_OPTIONS)
    for fn in fns:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        names |= {p.name for p in params if p.name != "self"}
    return frozenset(names | COMMON_OPTIONS)


def _check_noise(noise, seed: int) -> bool:
    """Whether `obs_noise` asks for noise (a TypeError or ValueError naming it when it is not a
    number >= 0, or `noise_seed` is not an integer >= 0)."""
    from .protocol import check_env_options

    if isinstance(noise, bool) or not isinstance(noise, (int, float)):
        raise TypeError(f"obs_noise = {noise!r} has the wrong type: expected a number >= 0")
    check_env_options(noise_seed=seed)
    OBS_NOISE.check("obs_noise", noise)
    return noise != 0


def _with_noise(env: gym.Env, noise: float, seed: int) -> gym.Env:
    """`ObservationNoise` (the whole observation) for the envs other than the trading ones."""
    if isinstance(noise, (int, float)) and not isinstance(noise, bool) and noise == 0:
        return env
    from .wrappers import ObservationNoise

    _check_noise(noise, seed)
    return ObservationNoise(env, float(noise), seed=int(seed))


def with_market_noise(env: gym.Env, noise: float, seed: int = 0, stale_ticks: float = 0.0,
                      bad_ticks: float = 0.0, vol_window: int | None = None) -> gym.Env:
    """A trading env (made, possibly normalised) with `MarketNoise` outermost when any of σ =
    `noise`, `stale_ticks`, `bad_ticks` is not 0; the env itself otherwise. Also what
    `eqtrade.backtest.engine.rollout` adds at test time. `vol_window`: of the volatility that
    scales the noise (default: the env's normalisation's, else 63)."""
    from .protocol import check_env_options
    from .wrappers import MarketNoise

    check_env_options(stale_ticks=stale_ticks, bad_ticks=bad_ticks)
    if not _check_noise(noise, seed) and stale_ticks == 0 and bad_ticks == 0:
        return env
    return MarketNoise(env, float(noise), seed=int(seed), stale=float(stale_ticks), bad_ticks=float(bad_ticks),
                       vol_window=vol_window)


def trading_env(env_id: str = "portfolio", normalize: bool = True, vol_window: int = 63, clip: float = 5.0,
                obs_noise: float = 0.0, noise_seed: int = 0, stale_ticks: float = 0.0, bad_ticks: float = 0.0,
                scale: str | None = None, horizons=(), vol_ref=None, **kwargs) -> gym.Env:
    """A trading env (portfolio or trading) with its observation wrappers; also the entry point of
    the gymnasium ids eqtrade/Portfolio-v0 and eqtrade/Trading-v0. `obs_noise`, `stale_ticks`,
    `bad_ticks`: `eqtrade.envs.wrappers.MarketNoise` (σ in units of each asset's trailing
    volatility over `vol_window` days).

    `scale` (portfolio env): the return-scale family of the observation, "exact" (returns over
    their trailing volatility; the default with `normalize`), "relaxed" (plus volatility levels
    relative to `vol_ref`) or "plain" (raw returns over a constant, plus the levels; `normalize`
    does not apply); `horizons`: multi-horizon returns ("default" or a list of days / [days, skip]);
    see `eqtrade.envs.wrappers.MarketFeatures`. With `normalize = false` and no scale, the env
    shows raw simple returns (as before the scale axis)."""
    from .portfolio import PortfolioEnv
    from .trading import TradingEnv
    from .wrappers import MarketFeatures, VolatilityNormalized, parse_horizons

    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be true or false, got {normalize!r}")
    horizons = parse_horizons(horizons)
    features = (scale not in (None, "exact")) or bool(horizons)
    if env_id != "portfolio" and (features or scale is not None or vol_ref is not None):
        raise ValueError(f"scale, horizons and vol_ref apply to the portfolio env, not {env_id!r}")
    if scale in ("exact", "relaxed") and not normalize:
        raise ValueError(f"scale = {scale!r} shows returns over their trailing volatility: it needs normalize = true "
                         "(scale = 'plain' shows raw returns)")
    env: gym.Env = (PortfolioEnv if env_id == "portfolio" else TradingEnv)(**kwargs)
    from .protocol import check_env_options

    check_env_options(vol_window=vol_window, clip=clip)
    if normalize and scale != "plain":
        env = VolatilityNormalized(env, vol_window, clip)
    if features or (scale == "exact" and vol_ref is not None):
        env = MarketFeatures(env, scale or "exact", horizons, vol_ref, vol_window, clip)
    return with_market_noise(env, obs_noise, noise_seed, stale_ticks, bad_ticks, vol_window)


def portfolio_env(**kwargs) -> gym.Env:
    """gymnasium entry point of eqtrade/Portfolio-v0: `trading_env("portfolio", ...)`."""
    return trading_env("portfolio", **kwargs)


def single_asset_env(**kwargs) -> gym.Env:
    """gymnasium entry point of eqtrade/Trading-v0: `trading_env("trading", ...)`."""
    return trading_env("trading", **kwargs)
