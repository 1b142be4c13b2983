"""The one error type services raise; handlers turn it into ``{"error": {code, message, details}}``.

Each error has a stable machine ``code`` and a Chinese message (translated on the way out).
"""

from __future__ import annotations

import errno
from typing import Any

from kuaishu.i18n import gettext_


class AppError(Exception):
    """A failure a user can act on: stable code, HTTP status, zh-CN message template."""

    status = 400
    code = "bad_request"
    message = "请求有误。"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        **params: object,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details
        self.params = params
        super().__init__(f"{self.code}: {self.message}")

    def localized(self) -> str:
        """The message in the request's language, placeholders filled."""
        return gettext_(self.message, **self.params)


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    message = "提交的数据未通过校验。"


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "未找到所请求的对象。"


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "与现有数据冲突。"


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"
    message = "请先登录或提供有效的 API 密钥。"


class PermissionDenied(AppError):
    status = 403
    code = "permission_denied"
    message = "您没有执行此操作的权限。"


class DiskFull(AppError):
    """The disk holding the data folder (or a temporary folder) is full (ENOSPC, EDQUOT)."""

    status = 507
    code = "disk_full"
    message = "服务器磁盘空间不足，操作未能完成。请联系平台运营者清理磁盘空间后重试。"


class StorageNotWritable(AppError):
    """The data folder cannot be written: a read-only file system or missing rights."""

    status = 503
    code = "storage_not_writable"
    message = (
        "服务器数据目录不可写（只读或无写入权限），操作未能完成。请联系平台运营者检查数据目录。"
    )


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
# DuckDB reports the operating system's error in its message text (strerror), not as OSError.
_FULL_TEXT = ("no space left on device", "disk quota exceeded")
_NOT_WRITABLE_TEXT = ("read-only file system", "permission denied")
_IO_ERROR = ("io error:", "transactioncontext error:")


def storage_problem(error: BaseException) -> AppError | None:
    """A full or unwritable disk behind ``error`` (or what caused it), as its own error; None
    when the failure is something else. Keeps "disk full" from reading as a bad file."""
    seen: BaseException | None = error
    for _ in range(8):  # the error, then what it was raised from
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return DiskFull(details={"errno": errno.errorcode.get(seen.errno or 0)})
        if isinstance(seen, OSError) and seen.errno in _NOT_WRITABLE:
            return StorageNotWritable(details={"errno": errno.errorcode.get(seen.errno or 0)})
        # Only DuckDB's own I/O errors, first line: a CSV error quotes the user's line after it.
        first = (str(seen).splitlines() or [""])[0].lower()
        if first.startswith(_IO_ERROR) and any(t in first for t in _FULL_TEXT):
            return DiskFull(details={"errno": "ENOSPC"})
        if first.startswith(_IO_ERROR) and any(t in first for t in _NOT_WRITABLE_TEXT):
            return StorageNotWritable(details={"errno": "EROFS"})
        seen = seen.__cause__ or seen.__context__
    return None


# Pydantic's error types, in the words a user reads.
PROBLEM_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不允许的未知字段",
    "json_invalid": "JSON 格式错误",
    "string_too_long": "内容过长",
    "string_too_short": "内容过短",
    "int_parsing": "应为整数",
    "bool_parsing": "应为布尔值",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "datetime_parsing": "日期时间格式不正确",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为列表",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "float_type": "应为数值",
    "finite_number": "应为有限的数值",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "union_tag_invalid": "取值不在允许范围内",
}
