"""``kuaishu catalog import``: another portal's catalog, previewed, then imported once confirmed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Region
from kuaishu.catalog import importer, sources
from kuaishu.cli_support import CLI_ACTOR, console, fail, session_factory
from kuaishu.db import transaction
from kuaishu.errors import AppError, ValidationFailed

catalog_app = typer.Typer(help="目录批量工作", no_args_is_help=True)
_factory = session_factory


@catalog_app.command("import")
def import_catalog(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="目录文件")],
    format: Annotated[sources.SourceFormat, typer.Option(help="xlsx / csv / json / jsonl / ckan")],
    mapping: Annotated[
        Path | None, typer.Option(help="确认的类别→领域对应（JSON 文件）；省略则采用建议")
    ] = None,
    region_code: Annotated[str | None, typer.Option(help="新建部门的默认行政区划代码")] = None,
    source: Annotated[str, typer.Option(help="来源平台名称")] = "",
    confirm: Annotated[bool, typer.Option(help="确认导入；不加则只显示预览")] = False,
) -> None:
    """导入其他平台的目录（跨部门）：先预览类别与部门的对应，加 --confirm 才导入。"""
    try:
        with transaction(_factory()) as session:
            region_id = _region_id(session, region_code)
            parsed = sources.read(file.read_bytes(), format, source)
            plan = importer.plan_import(
                session, actor=CLI_ACTOR, parsed=parsed, region_id=region_id
            )
            _show_plan(plan)
            if not confirm:
                console.print(
                    "预览完毕，未导入。核对后加 --confirm（可用 --mapping 修改对应）导入。"
                )
                return
            chosen = _mapping(mapping) if mapping else dict(plan.categories)
            result = importer.run_import(
                session, actor=CLI_ACTOR, plan=plan, mapping=chosen, source=source
            )
            console.print(
                f"已导入 {len(result.created)} 条；新建部门 {len(result.departments_created)} 个；"
                f"完全重复 {len(result.duplicates)} 条（未导入）；未通过 {len(result.rejected)} 条。"
            )
            for problem in result.rejected:
                console.print(f"  {problem.ref}：{problem.reason}")
    except AppError as exc:
        fail(exc)


def _region_id(session: Session, code: str | None) -> int | None:
    if code is None:
        return None
    region_id = session.scalar(select(Region.id).where(Region.code == code))
    if region_id is None:
        raise AppError(
            "行政区划代码 {value} 不存在。", code="region_not_found", status=404, value=code
        )
    return region_id


def _mapping(path: Path) -> dict[str, str | None]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise ValidationFailed(
            "类别对应关系应为 JSON 对象，键为来源类别，值为领域或 null。", code="invalid_mapping"
        )
    return value


def _show_plan(plan: importer.Plan) -> None:
    summary = plan.as_dict()
    console.print(
        f"记录 {summary['records']} 条，待导入 {summary['to_import']} 条，"
        f"完全重复 {len(plan.duplicates)} 条，无法读取 {len(plan.rejected)} 条。"
    )
    categories = Table("来源类别", "建议领域", "条目数")
    for row in summary["categories"]:
        categories.add_row(
            row["category"] or "（无）", row["proposed_domain"] or "（无）", str(row["entries"])
        )
    console.print(categories)
    departments = Table("部门", "匹配", "条目数")
    for match in plan.departments:
        found = f"已有 #{match.department_id}" if match.department_id else "新建"
        departments.add_row(match.name, found, str(match.entries))
    console.print(departments)
