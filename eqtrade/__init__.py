"""eqtrade: approximately equivariant reinforcement learning for trading."""

__version__ = "0.1.0"


def _register_envs() -> None:
    # entry points are strings: registering imports only gymnasium, not the environments
    import gymnasium as gym

    for env_id, entry in (("eqtrade/Portfolio-v0", "eqtrade.envs.portfolio:PortfolioEnv"),
                          ("eqtrade/Trading-v0", "eqtrade.envs.trading:TradingEnv")):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)


_register_envs()
