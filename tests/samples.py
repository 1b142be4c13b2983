"""The sample files tests read: the ones shipped with the package (``kuaishu.demo_data``).

``sample(name)`` is where a test finds one; ``uses(*paths)`` marks the tests that read them, and the
autouse fixture in tests/conftest.py fails such a test — never skips it — when a file is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kuaishu.demo_data import SAMPLES


def sample(name: str) -> Path:
    """The shipped sample file ``name`` (its presence is checked when a marked test runs)."""
    return SAMPLES / name


def uses(*paths: Path) -> pytest.MarkDecorator:
    """Mark a test or module as reading these sample files."""
    return pytest.mark.samples(*paths)


def check_present(node: pytest.Item) -> None:
    missing = [
        str(path)
        for marker in node.iter_markers("samples")
        for path in marker.args
        if not Path(path).is_file()
    ]
    assert not missing, (
        f"sample files missing: {missing}. They ship with the package in src/kuaishu/demo_data/ "
        "(see its README); a checkout without them cannot run this test."
    )
