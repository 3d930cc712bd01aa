"""The import contract of docs/design.md, checked over every import in the package, function-level
imports included:

    util, lock, outdirs, strategies  <  data  <  symmetry  <  nn | envs  <  agents  <  backtest  <  run  <  sweep  <  cli

A module may import its own layer and the layers below it; nn and envs are independent; agents
see envs only through the contract (eqtrade.envs.protocol), the one rollout
(eqtrade.envs.rollout) and the spec that rebuilds an env (EnvSpec, eqtrade.envs.factory); no private name (`_x`) is imported from another module. The checker is
shown to catch a planted upward import, a planted nn -> envs import and a private import."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "eqtrade"

#: layer of each top-level part of the package (nn and envs share a rank but may not import each other)
LAYERS = {"eqtrade": 0, "util": 0, "lock": 0, "outdirs": 0, "strategies": 0, "data": 1, "symmetry": 2, "nn": 3, "envs": 3,
          "agents": 4, "backtest": 5, "run": 6, "sweep": 7, "cli": 8}
INDEPENDENT = {("nn", "envs"), ("envs", "nn")}
#: what agents may import of envs
AGENT_ENV_MODULES = {"eqtrade.envs.protocol", "eqtrade.envs.rollout", "eqtrade.envs.factory"}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    """The top-level part of the package a module belongs to ("eqtrade" for the package itself)."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "eqtrade"


def _imports(tree: ast.AST, module: str, is_pkg: bool):
    """(imported module, names, line) for every import statement, relative ones resolved."""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - (node.level - 1)]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def check_imports(root: Path) -> list[str]:
    """Every violation of the import contract in the package at `root` (a list of one-line messages)."""
    problems = []
    modules = {_module_name(root, p) for p in root.rglob("*.py")}
    for path in sorted(root.rglob("*.py")):
        me = _module_name(root, path)
        mine = _part(me)
        tree = ast.parse(path.read_text(), str(path))
        for target, names, line in _imports(tree, me, path.name == "__init__.py"):
            if not (target == "eqtrade" or target.startswith("eqtrade.")):
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            # `from eqtrade.x import y` may name a submodule y: judge the deepest module named
            targets = [f"{target}.{n}" if f"{target}.{n}" in modules else target for n in (names or [None])]
            for t in set(targets):
                theirs = _part(t)
                if theirs not in LAYERS or mine not in LAYERS:
                    problems.append(f"{where}: {me} -> {t}: a part of the package with no layer")
                elif (mine, theirs) in INDEPENDENT:
                    problems.append(f"{where}: {me} imports {t}: {mine} and {theirs} are independent layers")
                elif LAYERS[theirs] > LAYERS[mine]:
                    problems.append(f"{where}: {me} imports {t}, a layer above it ({theirs} > {mine})")
                elif mine == "agents" and theirs == "envs" and not any(t == m or t.startswith(m + ".")
                                                                       for m in AGENT_ENV_MODULES):
                    problems.append(f"{where}: {me} imports {t}: agents see envs only through "
                                    f"{', '.join(sorted(AGENT_ENV_MODULES))}")
            for n in names:
                if n.startswith("_") and not n.startswith("__") and target != me:
                    problems.append(f"{where}: {me} imports the private name {n} from {target}")
    return problems


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package modules it imports (function-level imports included; imports of a
    package's __init__ are left out: they are re-exports, not dependencies between modules)."""
    modules = {_module_name(root, p): p for p in root.rglob("*.py")}
    packages = {_module_name(root, p) for p in root.rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for me, path in modules.items():
        if me in packages:
            continue
        deps = set()
        for target, names, _ in _imports(ast.parse(path.read_text()), me, False):
            for t in ([f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]):
                if t in modules and t not in packages and t != me:
                    deps.add(t)
        graph[me] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_no_import_cycles_between_modules_not_even_inside_functions():
    cycle = find_cycle(import_graph(PKG))
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_catches_a_planted_cycle(tmp_path):
    copy = tmp_path / "eqtrade"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "*.parquet"))
    (copy / "nn" / "mlp.py").write_text((copy / "nn" / "mlp.py").read_text()
                                        + "\n\ndef f():\n    from .factory import build_actor\n")
    cycle = find_cycle(import_graph(copy))
    assert cycle is not None and "eqtrade.nn.mlp" in cycle, cycle


def test_the_package_keeps_its_layers():
    problems = check_imports(PKG)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module,line,expect", [
    ("data/planted_violation.py", "from ..agents import SAC\n", "a layer above it"),
    ("data/planted_violation.py", "def f():\n    from eqtrade.backtest import engine\n", "a layer above it"),
    ("nn/planted_violation.py", "from ..envs import PortfolioEnv\n", "independent layers"),
    ("agents/planted_violation.py", "from ..envs.portfolio import PortfolioEnv\n", "only through"),
    ("backtest/planted_violation.py", "from ..agents.base import _type_ok\n", "private name"),
])
def test_the_checker_catches_a_planted_violation(tmp_path, module, line, expect):
    copy = tmp_path / "eqtrade"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "*.parquet"))
    assert not check_imports(copy)
    (copy / module).write_text(line)
    problems = check_imports(copy)
    assert len(problems) == 1 and expect in problems[0] and "planted_violation" in problems[0], problems


def test_agents_name_no_trading_env_and_read_no_info_keys():
    """The contract by construction: no agent module names a trading env, reads `info[...]`,
    reads env attributes through `.unwrapped`, pickles an env or defines `__setstate__`."""
    bad = re.compile(r"TRADING_ENVS|PortfolioEnv|TradingEnv|\binfo\[|info\.get\(|\.unwrapped\b|pickle\.dumps")
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted((PKG / "agents").glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert not found, "\n".join(found)
    for part in ("agents", "envs"):
        for p in (PKG / part).glob("*.py"):
            text = p.read_text()
            assert "__setstate__" not in text and "pickle.dumps" not in text, p
