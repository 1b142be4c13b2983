"""Shapes of the data API, for its documentation and its one JSON body (lookup by POST).

Query and lookup answers are encoded straight from DuckDB's rows with orjson — these models
describe them in the OpenAPI document but never validate them row by row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kuaishu.schemas import Input


class Shape(StrEnum):
    ARRAYS = "arrays"  # rows as arrays, in the order of `fields` (compact, the default)
    OBJECTS = "objects"  # rows as {name: value}


class FieldOut(BaseModel):
    name: str = Field(description="字段名（信息项名称）或统计结果名，如 sum(人口)")
    type: str = Field(description="DuckDB 类型，如 VARCHAR、BIGINT、DECIMAL(18,2)、DATE")
    item_type: str | None = Field(description="信息项数据类型代码（C、N、D…）；统计结果为 null")


class RowsOut(BaseModel):
    fields: list[FieldOut]
    rows: list[list[Any]] | list[dict[str, Any]] = Field(
        description="shape=arrays（默认）时每行是按 fields 顺序的数组；shape=objects 时是对象"
    )
    version: int = Field(description="所读数据版本号")


class QueryOut(RowsOut):
    total: int | None = Field(description="符合条件的总行数（total=none 时为 null）")
    total_exact: bool = Field(description="total 是否精确；大数据集上的估算为 false")
    next_cursor: str | None = Field(description="下一页的游标；没有更多数据时为 null")


class VersionOut(BaseModel):
    number: int
    row_count: int
    byte_size: int
    checksum_sm3: str = Field(description="data.parquet 的 SM3 摘要")
    created_at: datetime
    published_at: datetime | None


class DictionaryField(BaseModel):
    name: str = Field(description="信息项名称")
    type: str = Field(description="存储类型（DuckDB）")
    item_type: str | None = Field(description="信息项数据类型代码")
    item_type_label: str | None = Field(description="数据类型名称，如 字符型")
    length: int | None = Field(description="数据长度")
    description: str = Field(description="信息项描述")
    key: bool = Field(description="是否关键字段（可按键查询，有索引）")


class DictionaryOut(BaseModel):
    code: str
    name: str
    version: VersionOut
    fields: list[DictionaryField]


class LookupIn(Input):
    """Lookup by POST keeps personal identifiers out of URLs and access logs."""

    key: str | None = Field(default=None, description="唯一关键字段的值")
    keys: dict[str, str] = Field(
        default_factory=dict, description="{关键字段名: 值}，多关键字段时用"
    )
    fields: list[str] = Field(default_factory=list, description="只返回这些字段")
    shape: Shape = Shape.ARRAYS
    purpose: str | None = Field(default=None, max_length=200, description="使用目的，记入审计")
