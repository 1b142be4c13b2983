"""Collection enumerations with their Chinese labels."""

from __future__ import annotations

from enum import StrEnum


class SourceKind(StrEnum):
    FILE = "file"  # 文件
    DATABASE = "database"  # 数据库（前置机）
    HTTP_API = "http_api"  # 接口
    WEB = "web"  # 网页
    PUSH = "push"  # 推送


class RunStatus(StrEnum):
    QUEUED = "queued"  # 排队中
    RUNNING = "running"  # 运行中
    SUCCEEDED = "succeeded"  # 成功
    FAILED = "failed"  # 失败
    CANCELLED = "cancelled"  # 已取消


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

LABELS: dict[type[StrEnum], dict[str, str]] = {
    SourceKind: {
        "file": "文件",
        "database": "数据库（前置机）",
        "http_api": "数据接口",
        "web": "网页表格",
        "push": "系统推送",
    },
    RunStatus: {
        "queued": "排队中",
        "running": "运行中",
        "succeeded": "成功",
        "failed": "失败",
        "cancelled": "已取消",
    },
}
