"""The application factory: one FastAPI app serving the console, the portal and the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Connection, Engine

from kuaishu import __version__
from kuaishu.db import make_engine, make_sessionmaker
from kuaishu.settings import Settings, get_settings
from kuaishu.store.storage import prepare_data_dir
from kuaishu.web import apidocs, errors
from kuaishu.web.middleware import (
    DeclaredBodyLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    filter_access_log,
)

STATIC_DIR = Path(__file__).parent / "static"


def load_domains() -> None:
    """Import every domain's policies so the authorization registry is complete."""
    import kuaishu.accounts.policies
    import kuaishu.catalog.policies
    import kuaishu.clean.policies
    import kuaishu.collect.policies
    import kuaishu.security.policies
    import kuaishu.share.policies  # noqa: F401


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app for ``settings``; tests pass their own engine."""
    settings = settings or get_settings()
    load_domains()
    prepare_data_dir()  # 0700, and 0600 for every file from here on (before SQLite makes one)
    engine = engine or make_engine(settings.resolved_database_url)
    app = FastAPI(
        title="块数 kuaishu API",
        version=__version__,
        docs_url=None,  # web/apidocs.py serves it from vendored assets
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        description=(
            '政务数据共享开放平台接口。错误统一为 {"error": {code, message, details}}。'
            "调用需 API 密钥：点击 Authorize 填入密钥后即可在本页试用。"
        ),
        lifespan=_lifespan,
    )
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.settings = settings
    errors.install(app)
    apidocs.install(app)
    filter_access_log()  # looked-up values never in clear in the access log
    app.add_middleware(
        DeclaredBodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.upload_max_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every response, errors too
    _include_routers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the job machinery (runner, recovery, scheduled loads) and stop it on shut-down."""
    from kuaishu.collect.jobs import Background, InlineRunner, make_runner

    factory = app.state.sessionmaker
    settings: Settings = app.state.settings
    if isinstance(factory.kw.get("bind"), Connection):
        # Sessions on one connection (a test's rolled-back transaction) cannot be shared with
        # other threads: loads run inline, and nothing runs in the background.
        app.state.runner = InlineRunner(factory)
        yield
        return
    runner = make_runner(
        settings.jobs,
        factory,
        threads=settings.job_threads,
        database_url=str(app.state.engine.url.render_as_string(hide_password=False)),
    )
    background = Background(factory, runner)
    app.state.runner = runner
    background.start()
    try:
        yield
    finally:
        background.stop()


def _include_routers(app: FastAPI) -> None:
    from kuaishu.accounts import admin_pages
    from kuaishu.accounts import pages as account_pages
    from kuaishu.accounts import routes as account_routes
    from kuaishu.catalog import pages as catalog_pages
    from kuaishu.catalog import routes as catalog_routes
    from kuaishu.clean import pages as clean_pages
    from kuaishu.clean import routes as clean_routes
    from kuaishu.collect import pages as collect_pages
    from kuaishu.collect import routes as collect_routes
    from kuaishu.notify import routes as notify_routes
    from kuaishu.security import egress_pages, egress_routes
    from kuaishu.security import pages as security_pages
    from kuaishu.security import routes as security_routes
    from kuaishu.share import catalog_routes as share_catalog_routes
    from kuaishu.share import grant_pages as share_grant_pages
    from kuaishu.share import pages as share_pages
    from kuaishu.share import routes as share_routes
    from kuaishu.share import subscription_pages as share_subscription_pages
    from kuaishu.share import subscription_routes
    from kuaishu.store import routes as store_routes
    from kuaishu.web import system

    for module in (
        system,
        account_routes,
        security_routes,
        egress_routes,
        catalog_routes,
        collect_routes,
        clean_routes,
        store_routes,
        share_routes,
        share_catalog_routes,
        subscription_routes,
        notify_routes,
        account_pages,
        admin_pages,
        security_pages,
        egress_pages,
        catalog_pages,
        collect_pages,
        clean_pages,
        share_pages,
        share_grant_pages,
        share_subscription_pages,
    ):
        # FastAPI's limiter, set per router, answers 413 through our error handler whether or
        # not Content-Length was sent; upload routes of later issues set their own limit.
        app.include_router(module.router, max_body_size=app.state.settings.max_body_bytes)
        uploads = getattr(module, "upload_router", None)
        if uploads is not None:  # file uploads and pushes: their own, larger limit
            app.include_router(uploads, max_body_size=app.state.settings.upload_max_bytes)
