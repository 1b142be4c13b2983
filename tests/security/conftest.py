"""Fixtures the security tests share with the functional ones: a module database with loads
(collect), a served entry (store), and the exchange's rule that a test's grants are revoked
after it (a department holds one grant in force per entry)."""

from __future__ import annotations

from tests.functional.collect.conftest import bureau, collect_app, http, staff
from tests.functional.share.conftest import no_grant_left_in_force
from tests.functional.store.conftest import module_data_dir, served
from tests.unit.collect.conftest import data_dir, factory, load_engine

__all__ = [
    "bureau",
    "collect_app",
    "data_dir",
    "factory",
    "http",
    "load_engine",
    "module_data_dir",
    "no_grant_left_in_force",
    "served",
    "staff",
]
