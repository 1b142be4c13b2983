"""The ``kuaishu`` command line: init, serve, demo, department, user and key administration, and
collection (ingest, worker, runs, versions)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from kuaishu.accounts import auth, services
from kuaishu.accounts.roles import LevelKind, Role
from kuaishu.catalog import cli as catalog_cli
from kuaishu.cli_support import CLI_ACTOR, console, fail, session_factory
from kuaishu.collect import cli as collect_cli
from kuaishu.collect import queue
from kuaishu.db import make_engine, transaction
from kuaishu.errors import AppError
from kuaishu.migrate import current_revision, upgrade
from kuaishu.pagination import PageRequest
from kuaishu.settings import get_settings
from kuaishu.store.storage import prepare_data_dir

app = typer.Typer(help="块数 kuaishu — 政务数据共享开放平台", no_args_is_help=True)
dept_app = typer.Typer(help="部门管理", no_args_is_help=True)
user_app = typer.Typer(help="用户管理", no_args_is_help=True)
key_app = typer.Typer(help="API 密钥管理", no_args_is_help=True)
app.add_typer(dept_app, name="dept")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="apikey")

_factory = session_factory
_fail = fail


@app.command()
def init() -> None:
    """创建或升级数据库结构（可重复运行）。"""
    settings = get_settings()
    prepare_data_dir()
    engine = make_engine(settings.resolved_database_url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    state = "已是最新" if before == after else f"{before or '空'} → {after}"
    console.print(f"数据库结构：{state}（{engine.url.render_as_string(hide_password=True)}）")
    if queue.is_postgres(settings.resolved_database_url):
        created = queue.ensure_schema(settings.resolved_database_url)
        console.print("任务队列（procrastinate）：" + ("已创建" if created else "已存在"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口")] = 8000,
    workers: Annotated[int, typer.Option(help="进程数")] = 1,
) -> None:
    """启动平台（控制台、开放门户与 API）。"""
    uvicorn.run(
        "kuaishu.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="只建演示数据，不启动服务")] = False,
) -> None:
    """建立演示平台（一个省、两个市、十余个部门、每个角色一个用户），然后启动服务。"""
    from kuaishu import demo as demo_data

    init()
    factory = _factory()
    try:
        with transaction(factory) as session:
            created = demo_data.build_demo(session)
            report = demo_data.build_catalog(session) if created else None
    except demo_data.DemoRefused as exc:
        _fail(exc)
    console.print("演示数据：" + ("已创建" if created else "已存在，保持不变"))
    if report is not None:
        console.print(
            f"演示目录：广西公共数据开放平台目录 {report.published} 个数据集（修复错位记录 "
            f"{report.repaired} 条，拒绝 {report.rejected} 条），来自 {report.departments} 个部门"
        )
    if created:
        loaded = demo_data.build_data(factory)
        for name, kept, quarantined in loaded.loaded:
            console.print(f"演示数据集：{name}，{kept} 行（隔离 {quarantined} 行）")
        for name, error in loaded.failed:
            console.print(f"[red]演示数据集未能加载：{name}：{error}[/red]")
        exchange = demo_data.build_exchange(factory)
        if exchange.application is not None:
            console.print(
                f"演示共享：consumer 已获授权 #{exchange.grant}，"
                f"并提交了待 officer 答复的有条件共享申请 #{exchange.application}"
            )
    table = Table(title=f"演示账户（密码均为 {demo_data.DEMO_PASSWORD}）")
    table.add_column("用户名")
    table.add_column("姓名")
    table.add_column("可以做什么")
    for account in demo_data.ACCOUNTS:
        table.add_row(account.username, account.display_name, account.what)
    table.add_row("citizen", "郑公众", "社会公众（实名注册）")
    table.add_row("enterprise", "冯企业", "企业用户")
    console.print(table)
    console.print(
        f"打开 http://{host}:{port}/login 登录；接口文档 http://{host}:{port}/api/v1/docs"
    )
    if not no_serve:
        serve(host=host, port=port, workers=1)


@dept_app.command("list")
def dept_list() -> None:
    """列出部门。"""
    with transaction(_factory()) as session:
        result = services.list_departments(
            session, actor=CLI_ACTOR, page=PageRequest(page=1, page_size=10_000)
        )
        table = Table("代码", "名称", "统一社会信用代码")
        for department in result.items:
            table.add_row(department.code, department.name, department.credit_code)
    console.print(table)


@dept_app.command("add")
def dept_add(
    code: str,
    name: str,
    credit_code: str,
    region_code: Annotated[str, typer.Option(help="所属行政区划代码")],
) -> None:
    """新建部门。"""
    try:
        with transaction(_factory()) as session:
            region = next(
                (
                    r
                    for r in services.list_regions(
                        session, actor=CLI_ACTOR, page=PageRequest(1, 10_000)
                    ).items
                    if r.code == region_code
                ),
                None,
            )
            if region is None:
                raise AppError(
                    "行政区划代码 {value} 不存在。",
                    code="region_not_found",
                    status=404,
                    value=region_code,
                )
            department = services.create_department(
                session,
                actor=CLI_ACTOR,
                code=code,
                name=name,
                credit_code=credit_code,
                region_id=region.id,
            )
            console.print(f"已创建部门 {department.code} {department.name}")
    except AppError as exc:
        _fail(exc)


@app.command("region-add")
def region_add(
    code: str,
    name: str,
    level: LevelKind,
    parent_id: Annotated[int | None, typer.Option(help="上级行政区 id")] = None,
) -> None:
    """新建行政区。"""
    try:
        with transaction(_factory()) as session:
            region = services.create_region(
                session, actor=CLI_ACTOR, code=code, name=name, level=level, parent_id=parent_id
            )
            console.print(f"已创建行政区 {region.code} {region.name}（id {region.id}）")
    except AppError as exc:
        _fail(exc)


@user_app.command("add")
def user_add(
    username: str,
    display_name: str,
    department_code: Annotated[str, typer.Option("--department", help="部门代码")],
    role: Annotated[list[Role], typer.Option(help="角色，可重复")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """新建政务人员账户。"""
    try:
        with transaction(_factory()) as session:
            department = services.get_department_by_code(session, department_code)
            user = services.create_staff_user(
                session,
                actor=CLI_ACTOR,
                username=username,
                display_name=display_name,
                password=password,
                department_id=department.id,
                roles=role,
            )
            console.print(f"已创建用户 {user.username}（id {user.id}）")
    except AppError as exc:
        _fail(exc)


@user_app.command("disable")
def user_disable(username: str, reason: Annotated[str, typer.Option(help="停用原因")]) -> None:
    """停用账户（立即结束会话、撤销密钥）。"""
    try:
        with transaction(_factory()) as session:
            user = services.get_user_by_username(session, username)
            if user is None:
                raise AppError(
                    "用户 {value} 不存在。", code="user_not_found", status=404, value=username
                )
            services.disable_user(session, actor=CLI_ACTOR, user_id=user.id, reason=reason)
            console.print(f"已停用 {username}")
    except AppError as exc:
        _fail(exc)


@user_app.command("list")
def user_list() -> None:
    """列出用户。"""
    with transaction(_factory()) as session:
        result = services.list_users(session, actor=CLI_ACTOR, page=PageRequest(1, 10_000))
        table = Table("用户名", "姓名", "类型", "状态", "角色")
        for user in result.items:
            roles = "，".join(f"{a.department.code}:{a.role.label}" for a in user.roles)
            table.add_row(
                user.username,
                user.display_name,
                user.kind,
                "启用" if user.is_active else "停用",
                roles,
            )
    console.print(table)


@key_app.command("create")
def key_create(
    username: str,
    name: Annotated[str, typer.Option(help="密钥用途")],
    scope: Annotated[list[str], typer.Option(help="read / write")] = ["read"],  # noqa: B006
    days: Annotated[int, typer.Option(help="有效天数")] = 365,
) -> None:
    """为用户创建 API 密钥（只显示这一次）。"""
    try:
        with transaction(_factory()) as session:
            user = services.get_user_by_username(session, username)
            if user is None:
                raise AppError(
                    "用户 {value} 不存在。", code="user_not_found", status=404, value=username
                )
            issued = auth.create_api_key(
                session,
                actor=auth.actor_for(user, auth_method="cli"),
                name=name,
                scopes=scope,
                expires_in_days=days,
            )
            console.print(f"密钥（只显示这一次）：[bold]{issued.secret}[/bold]")
    except AppError as exc:
        _fail(exc)


@key_app.command("revoke")
def key_revoke(username: str, key_id: int) -> None:
    """撤销用户的 API 密钥。"""
    try:
        with transaction(_factory()) as session:
            user = services.get_user_by_username(session, username)
            if user is None:
                raise AppError(
                    "用户 {value} 不存在。", code="user_not_found", status=404, value=username
                )
            auth.revoke_api_key(
                session, actor=auth.actor_for(user, auth_method="cli"), key_id=key_id
            )
            console.print(f"已撤销密钥 {key_id}")
    except AppError as exc:
        _fail(exc)


app.command()(collect_cli.ingest)
app.command()(collect_cli.worker)
app.add_typer(collect_cli.runs_app, name="runs")
app.add_typer(collect_cli.versions_app, name="versions")
app.add_typer(catalog_cli.catalog_app, name="catalog")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
