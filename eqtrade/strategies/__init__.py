"""Strategy configs shipped with eqtrade (the repository's strategies/ links here), so that
`eqtrade train --config sac-relaxed` works from any directory after a plain install."""

from __future__ import annotations

import tomllib
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


def load_toml(path: str | Path) -> dict:
    """A strategy/run config file: a path, or the bare name of a shipped strategy (`sac-relaxed`)."""
    path = Path(path)
    if not path.exists():
        shipped = find(str(path))
        if shipped is None:
            raise FileNotFoundError(f"{path}: no such config file, and no shipped strategy of that name "
                                    f"({', '.join(names())})")
        path = shipped
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a TOML config (not UTF-8 text: byte 0x{e.object[e.start]:02x} at offset "
                         f"{e.start}); a config or strategy file is TOML text in UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from e
