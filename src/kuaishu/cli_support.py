"""What every ``kuaishu`` command shares: the console, the command-line actor, sessions, errors."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.db import make_engine, make_sessionmaker
from kuaishu.errors import AppError
from kuaishu.settings import get_settings
from kuaishu.store.storage import prepare_data_dir

console = Console()

# Someone at the server's shell already holds the database; the CLI acts as the platform
# operator, and every change it makes is audited under the name "cli".
CLI_ACTOR = Actor(
    user_id=None,
    username="cli",
    auth_method="cli",
    roles=frozenset({(0, Role.PLATFORM_OPERATOR)}),
)


def session_factory() -> sessionmaker[Session]:
    """Sessions on the configured database, with every domain's policies registered."""
    from kuaishu.web.app import load_domains

    load_domains()
    settings = get_settings()
    prepare_data_dir()
    return make_sessionmaker(make_engine(settings.resolved_database_url))


def fail(exc: AppError) -> NoReturn:
    """Print ``exc`` with its stable code and stop with exit code 2."""
    console.print(f"[red]错误 {exc.code}[/red]：{exc.localized()}")
    raise typer.Exit(code=2)
