"""The one error type services raise; handlers turn it into ``{"error": {code, message, details}}``.

Each error has a stable machine ``code`` and a Chinese message (translated on the way out).
"""

from __future__ import annotations

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
