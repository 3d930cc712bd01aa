"""Strategy configs shipped with eqtrade (the repository's strategies/ links here), so that
`eqtrade train --config sac-relaxed` works from any directory after a plain install."""

from __future__ import annotations

from pathlib import Path

DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """The shipped strategy names (file stems)."""
    return sorted(p.stem for p in DIR.glob("*.toml"))


def find(name: str) -> Path | None:
    """The shipped config for a bare name (`sac-relaxed` or `sac-relaxed.toml`), or None."""
    stem = name[:-5] if name.endswith(".toml") else name
    if "/" in stem or "\\" in stem:
        return None
    path = DIR / f"{stem}.toml"
    return path if path.exists() else None
