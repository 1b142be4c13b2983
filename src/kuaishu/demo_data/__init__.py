"""The sample files the demo loads and the tests read, shipped inside the package.

Real files published by Chinese government bodies, messy on purpose (see README.md here for each
file's source and what makes it realistic). An installed kuaishu finds them here, so a fresh
clone or a wheel needs nothing beside it.
"""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent


def sample(name: str) -> Path:
    """The path of one shipped sample file; a missing one is an error, never an empty demo."""
    path = SAMPLES / name
    if not path.is_file():
        raise FileNotFoundError(f"示例数据文件缺失：{path}（应随 kuaishu 软件包一起发布）")
    return path
