"""Gymnasium trading environments (registered as eqtrade/Portfolio-v0 and eqtrade/Trading-v0)."""

from .. import _register_envs as register
from .market import DEFAULT_SPLITS, RUIN_REWARD, Market, resolve_prices, split_range
from .portfolio import PortfolioEnv
from .trading import TradingEnv

__all__ = ["DEFAULT_SPLITS", "RUIN_REWARD", "Market", "PortfolioEnv", "TradingEnv", "register",
           "resolve_prices", "split_range"]
