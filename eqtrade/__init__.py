"""eqtrade: approximately equivariant reinforcement learning for trading."""

__version__ = "0.2.0"


def register_envs() -> None:
    # entry points are strings: registering imports only gymnasium, not the environments
    import gymnasium as gym

    for env_id, entry in (("eqtrade/Portfolio-v0", "eqtrade.envs.factory:portfolio_env"),
                          ("eqtrade/Trading-v0", "eqtrade.envs.factory:single_asset_env")):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)
    # dm_control suite tasks (eqtrade.envs.dmc.DOMAINS); dm_control is imported only on make()
    for domain, task in (("cartpole", "swingup"), ("cartpole", "balance"), ("pendulum", "swingup"),
                         ("acrobot", "swingup"), ("ball_in_cup", "catch"), ("reacher", "easy")):
        env_id = f"dmc/{domain}-{task}"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="eqtrade.envs.dmc:DMCEnv", kwargs={"domain": domain, "task": task},
                         disable_env_checker=True)
    # the same tasks from pixels (eqtrade.envs.dmc_pixels; rendering is set up only on make())
    for domain, task in (("cartpole", "swingup"), ("cartpole", "balance"), ("pendulum", "swingup"),
                         ("acrobot", "swingup"), ("ball_in_cup", "catch"), ("reacher", "easy")):
        env_id = f"dmc-pixels/{domain}-{task}"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="eqtrade.envs.dmc_pixels:pixel_env",
                         kwargs={"domain": domain, "task": task}, disable_env_checker=True)


register_envs()
