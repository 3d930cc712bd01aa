"""Gymnasium trading environments (registered as eqtrade/Portfolio-v0 and eqtrade/Trading-v0)."""

import gymnasium as gym

from .market import DEFAULT_SPLITS, RUIN_REWARD, Market, resolve_prices, split_range
from .portfolio import PortfolioEnv
from .trading import TradingEnv


def register() -> None:
    """Register eqtrade's environments with gymnasium (idempotent)."""
    for env_id, entry in (("eqtrade/Portfolio-v0", "eqtrade.envs.portfolio:PortfolioEnv"),
                          ("eqtrade/Trading-v0", "eqtrade.envs.trading:TradingEnv")):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)


register()

__all__ = ["DEFAULT_SPLITS", "RUIN_REWARD", "Market", "PortfolioEnv", "TradingEnv", "register",
           "resolve_prices", "split_range"]
