"""Gymnasium environments (trading: eqtrade/Portfolio-v0, eqtrade/Trading-v0; dm_control:
dmc/DOMAIN-TASK, dmc-pixels/DOMAIN-TASK), their observation wrappers, the one env factory, the
one rollout, and the env–agent contract (`eqtrade.envs.protocol`)."""

from .. import register_envs as register
from ..data.market import DEFAULT_SPLITS, Market, resolve_prices, split_range
from .factory import EnvSpec, is_dmc, is_pixels, is_trading, make_env
from .portfolio import RUIN_REWARD, PortfolioEnv
from .protocol import EnvInterface, ExactReward, exact_reward_of, symmetry_of
from .rollout import Episode, evaluate_policy, rollout
from .trading import TradingEnv

__all__ = ["DEFAULT_SPLITS", "RUIN_REWARD", "EnvInterface", "EnvSpec", "Episode", "ExactReward", "Market",
           "PortfolioEnv", "TradingEnv", "evaluate_policy", "exact_reward_of", "is_dmc", "is_pixels", "is_trading",
           "make_env", "register", "resolve_prices", "rollout", "split_range", "symmetry_of"]
