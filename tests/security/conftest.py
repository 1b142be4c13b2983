"""Fixtures the security tests share with the functional ones: a module database with loads
(collect), a served entry (store)."""

from __future__ import annotations

from tests.functional.collect.conftest import bureau, collect_app, http, staff
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
    "served",
    "staff",
]
