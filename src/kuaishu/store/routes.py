"""The data API (数据接口): query, lookup, dictionary and downloads of a served version.

Resources are addressed by their catalog code, which contains a ``/`` (``前段码/后段码``): it is
written as is (``/api/v1/data/301001/52001A00001/query``) or percent-encoded (``%2F``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from kuaishu.clean.services import Channel
from kuaishu.errors import NotFound
from kuaishu.store import reads
from kuaishu.store.exports import Format, Variant, content_disposition
from kuaishu.store.query import ReadRequest, Total, names
from kuaishu.store.schemas import DictionaryOut, LookupIn, QueryOut, RowsOut, Shape
from kuaishu.web.deps import CurrentActor, SessionDep
from kuaishu.web.downloads import WatchedResponse, watched
from kuaishu.web.errors import error_body

router = APIRouter(prefix="/api/v1/data", tags=["data"])

# Parameters with a meaning of their own; every other one is a filter on a column.
RESERVED = frozenset(
    {
        "q",
        "fields",
        "sort",
        "limit",
        "offset",
        "cursor",
        "total",
        "distinct",
        "group_by",
        "agg",
        "shape",
        "purpose",
        "bom",
        "variant",
        "channel",
        "version",
    }
)


def read_request(
    request: Request,
    q: Annotated[
        str, Query(max_length=200, description="全文检索：每个词都须出现在某个文本字段中")
    ] = "",
    fields: Annotated[str, Query(description="只返回这些字段，逗号分隔，如 地区,人口")] = "",
    sort: Annotated[
        str, Query(description="排序字段，逗号分隔；前加 - 为降序，如 -人口,地区")
    ] = "",
    limit: Annotated[int | None, Query(ge=1, description="每页行数，默认 100，上限见配置")] = None,
    offset: Annotated[int, Query(ge=0, description="跳过的行数（与 cursor 二选一）")] = 0,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="上一页返回的 next_cursor")
    ] = None,
    total: Annotated[
        Total, Query(description="总数：exact 精确；estimate 估算（小数据集即精确）；none 不计")
    ] = Total.ESTIMATE,
    distinct: Annotated[bool, Query(description="去除重复行")] = False,
    group_by: Annotated[str, Query(description="分组字段，逗号分隔")] = "",
    agg: Annotated[
        str,
        Query(
            description="统计：count、count:字段、sum:字段、avg:字段、min:字段、max:字段，逗号分隔"
        ),
    ] = "",
) -> ReadRequest:
    """The read a query string asks for; the filters are the parameters not listed above."""
    filters = tuple(
        (name, value) for name, value in request.query_params.multi_items() if name not in RESERVED
    )
    return ReadRequest(
        filters=filters,
        q=q,
        fields=names(fields),
        sort=names(sort),
        limit=limit,
        offset=offset,
        cursor=cursor or None,
        total=total,
        distinct=distinct,
        group_by=names(group_by),
        aggregates=names(agg),
    )


def declared_purpose(
    request: Request,
    purpose: Annotated[
        str | None, Query(max_length=200, description="使用目的，记入审计（也可用 X-Purpose 头）")
    ] = None,
    x_purpose: Annotated[
        str | None, Header(description="使用目的，UTF-8 百分号编码", max_length=600)
    ] = None,
) -> str | None:
    """The purpose the caller declares, from the parameter or the (percent-encoded) header;
    kept on the request too, so a refused read is recorded with it."""
    declared = purpose or (unquote(x_purpose)[:200] if x_purpose else None)
    request.state.purpose = declared
    return declared


ReadDep = Annotated[ReadRequest, Depends(read_request)]
ChannelParam = Annotated[
    Channel | None,
    Query(
        description="按渠道的脱敏口径读取（预览共享、开放、沙箱用户所见）：share、open、sandbox；"
        "不填为本部门原始数据"
    ),
]
PurposeDep = Annotated[str | None, Depends(declared_purpose)]
VersionParam = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31,
        description="本部门读取指定的数据版本（含未发布、未通过 k 匿名检查或已回退的版本）；"
        "不填为所服务的版本",
    ),
]
ShapeParam = Annotated[Shape, Query(description="arrays：每行为数组（默认）；objects：每行为对象")]


def rows_response(result: reads.Rows, shape: Shape, **extra: Any) -> Response:
    """The rows as JSON, encoded in one pass by orjson (no per-row validation)."""
    fields = [o.field for o in result.outputs]
    rows: list[Any] = result.rows
    if shape == Shape.OBJECTS:
        labels = [o.name for o in result.outputs]
        rows = [dict(zip(labels, row, strict=True)) for row in result.rows]
    body = {"fields": fields, "rows": rows, **extra, "version": result.version}
    return Response(orjson.dumps(body, default=reads.json_value), media_type="application/json")


@router.get(
    "/{code:path}/query",
    summary="查询数据（筛选、检索、排序、分页、去重、分组统计）",
    response_class=Response,
    responses={200: {"model": QueryOut}},
)
def query(
    code: str,
    db: SessionDep,
    actor: CurrentActor,
    read: ReadDep,
    purpose: PurposeDep,
    shape: ShapeParam = Shape.ARRAYS,
    channel: ChannelParam = None,
    version: VersionParam = None,
) -> Response:
    """查询所服务数据版本中的行。

    **筛选**：`?字段名__运算=值`，可重复，条件之间为“且”。不写运算即等于：`?地区=北京`。
    运算：`eq` 等于、`ne` 不等于、`lt` 小于、`lte` 小于等于、`gt` 大于、`gte` 大于等于、
    `in` 属于（`?地区__in=北京,上海` 或 JSON 数组 `?地区__in=["北京","上海"]`）、
    `contains` 包含（不区分大小写）、`isnull` 为空（`=1`）/非空（`=0`）、`notnull` 非空（`=1`）。
    值按字段类型解析：日期 `2024-01-31`，日期时间 `2024-01-31T08:00:00`，是/否 `true`/`false`。

    **分页**：`limit` + `offset`，或游标：把响应中的 `next_cursor` 作为 `cursor` 传回，直到它为
    null。游标固定在生成它的数据版本上，翻页期间发布新版本也不会错行。游标不能与 offset、
    distinct、group_by 同用。

    **分组统计**：`?group_by=地区&agg=count,sum:人口`，结果字段名为 `count`、`sum(人口)`，
    可按它们排序（`sort=-count`）。

    **响应**：`{fields, rows, total, total_exact, next_cursor, version}`；`rows` 默认是按 `fields`
    顺序排列的数组（`shape=objects` 时为对象）。每次查询都记入审计，可用 `purpose` 参数或
    `X-Purpose` 头声明使用目的。
    """
    result = reads.query_data(
        db, actor=actor, code=code, request=read, purpose=purpose, channel=channel, version=version
    )
    return rows_response(
        result,
        shape,
        total=result.total,
        total_exact=result.total_exact,
        next_cursor=result.next_cursor,
    )


def query_response(result: reads.Rows, shape: Shape) -> Response:
    return rows_response(
        result,
        shape,
        total=result.total,
        total_exact=result.total_exact,
        next_cursor=result.next_cursor,
    )


def keys_of(request: Request, key: str | None) -> dict[str, str]:
    """A lookup's key values: ``key`` for the one key column, else the key columns by name."""
    keys = {
        name: value
        for name, value in request.query_params.multi_items()
        if name not in RESERVED and name != "key"
    }
    return {"key": key, **keys} if key is not None else keys


def body_keys(body: LookupIn) -> dict[str, str]:
    keys = dict(body.keys)
    return {"key": body.key, **keys} if body.key is not None else keys


def file_response(found: reads.Download, request: Request) -> StreamingResponse:
    """The file as it streams; a stream cut short is recorded as such (web.downloads.watched)."""
    headers = {"Content-Disposition": content_disposition(found.filename, found.fallback)}
    if found.cut_short is None:
        return StreamingResponse(found.body, media_type=found.media_type, headers=headers)
    body = watched(found.body, request.app.state.sessionmaker, found.cut_short)
    return WatchedResponse(body, media_type=found.media_type, headers=headers)


def lookup_response(result: reads.Rows, shape: Shape) -> Response:
    if not result.rows:  # answered, not raised: the lookup stays in the audit trail
        error = NotFound("未找到关键字段为该值的记录。", code="record_not_found")
        return JSONResponse(error_body(error.code, error.localized(), None), status_code=404)
    return rows_response(result, shape)


@router.get(
    "/{code:path}/lookup",
    summary="按关键字段查询（联机查询）",
    response_class=Response,
    responses={200: {"model": RowsOut}},
)
def lookup(
    code: str,
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    purpose: PurposeDep,
    fields: Annotated[str, Query(description="只返回这些字段，逗号分隔")] = "",
    key: Annotated[str | None, Query(description="唯一关键字段的值")] = None,
    shape: ShapeParam = Shape.ARRAYS,
    channel: ChannelParam = None,
    version: VersionParam = None,
) -> Response:
    """按关键字段取记录，走关键字段上的索引。

    只有一个关键字段时用 `?key=值`；有多个时按字段名传值，如 `?身份证号=…&姓名=…`。
    找不到时返回 404 `record_not_found`（这次查询仍记入审计）。个人身份号码等敏感值请用
    POST 方式，避免出现在网址和访问日志中。
    """
    keys = keys_of(request, key)
    result = reads.lookup(
        db,
        actor=actor,
        code=code,
        keys=keys,
        fields=names(fields),
        purpose=purpose,
        channel=channel,
        version=version,
    )
    return lookup_response(result, shape)


@router.post(
    "/{code:path}/lookup",
    summary="按关键字段查询（POST，值不进网址）",
    response_class=Response,
    responses={200: {"model": RowsOut}},
)
def lookup_by_post(
    code: str,
    request: Request,
    body: LookupIn,
    db: SessionDep,
    actor: CurrentActor,
    purpose: PurposeDep,
    channel: ChannelParam = None,
    version: VersionParam = None,
) -> Response:
    """与 GET 相同，关键字段的值放在 JSON 请求体中：`{"key": "…"}` 或 `{"keys": {"字段": "…"}}`。"""
    request.state.purpose = body.purpose or purpose
    keys = body_keys(body)
    result = reads.lookup(
        db,
        actor=actor,
        code=code,
        keys=keys,
        fields=tuple(body.fields),
        purpose=body.purpose or purpose,
        channel=channel,
        version=version,
    )
    return lookup_response(result, body.shape)


@router.get("/{code:path}/dictionary", response_model=DictionaryOut, summary="数据字典")
def dictionary(
    code: str, db: SessionDep, actor: CurrentActor, purpose: PurposeDep
) -> dict[str, Any]:
    """所服务版本的字段：信息项名称、类型、描述、是否关键字段，以及版本号、行数、SM3 摘要。
    读取数据字典也记入审计。"""
    return reads.dictionary(db, actor=actor, code=code, purpose=purpose)


@router.get(
    "/{code:path}/download.{fmt}",
    summary="下载（csv、json、jsonl、xml、xlsx、parquet）",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download(
    code: str,
    fmt: Format,
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    read: ReadDep,
    purpose: PurposeDep,
    bom: Annotated[bool, Query(description="CSV 加 UTF-8 BOM，便于 Excel 直接打开")] = False,
    variant: Annotated[
        Variant | None,
        Query(
            description="excel：供 Excel 打开的 CSV（加 BOM，以 = + - @ 开头的表头与文本前加单引号）"
        ),
    ] = None,
    channel: ChannelParam = None,
    version: VersionParam = None,
) -> StreamingResponse:
    """下载所服务版本，筛选、字段、排序与查询接口相同（不分页时为全部行），边生成边传输。

    - `csv`：UTF-8，原样返回存储的值（无 BOM、不加单引号）；`variant=excel` 为供 Excel 打开的
      CSV（加 BOM，以 `= + - @`、制表符或回车开头的表头与文本前加单引号，防止公式注入）；
      `bom=1` 只加 BOM。`json`：对象数组；`jsonl`：每行一个对象；
      `xml`：`<dataset><fields/><rows><row><字段名>值</字段名>…</row></rows></dataset>`，
      字段名不是合法 XML 名称时字符替换为 `_`，对照见 `<fields>`；空值为 `xsi:nil="true"`。
    - `xlsx`：超过 Excel 的 1,048,575 行数据时，续写到新工作表“数据2”“数据3”…。
    - `parquet`：不筛选时直接传输存储的版本文件。
    - XLSX 中文本一律写为文本单元格（不会成为公式，也不加单引号），超过 15 位的整数写为文本。
    - 文件名为中文（RFC 6266 `filename*`），并附 ASCII 备用名。下载在传输开始前记入审计；
      传输中断（客户端断开或生成失败）时另记一条 `data.download.incomplete`，含已发送字节数。
    """
    found = reads.download(
        db,
        actor=actor,
        code=code,
        request=read,
        fmt=fmt,
        bom=bom,
        variant=variant,
        purpose=purpose,
        channel=channel,
        version=version,
    )
    return file_response(found, request)
