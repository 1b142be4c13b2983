"""The API documentation page (/api/v1/docs) and what the OpenAPI document says about sign-in.

The page is Swagger UI served from ``static/vendor/swagger-ui`` (docs/decisions/0017): no CDN, so
it renders on a government network with no internet, and no inline script, so it runs under a
``script-src 'self'`` Content-Security-Policy — ``static/swagger-init.js`` starts it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

DOCS_URL = "/api/v1/docs"
VENDOR = "/static/vendor/swagger-ui"

# Both headers current_actor accepts (web/deps.py): Swagger UI's Authorize button offers each.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "API 密钥，作为 Authorization: Bearer <密钥> 发送（在“个人中心 → API 密钥”签发）。",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "API 密钥，作为 X-API-Key 请求头发送。",
    },
}

TAGS = [
    {"name": "system", "description": "系统：存活与就绪检查"},
    {"name": "accounts", "description": "账户：行政区、部门、用户、角色、API 密钥"},
    {"name": "audit", "description": "审计：审计日志的查阅与导出"},
    {"name": "catalog", "description": "目录：政务数据资源目录的编制、审核、发布与检索"},
    {"name": "collect", "description": "归集：数据来源、加载任务与运行日志"},
    {"name": "clean", "description": "治理：清洗规则、质量检查与脱敏策略"},
    {"name": "data", "description": "数据：已发布版本的查询、下载与变更"},
    {"name": "share", "description": "共享：共享申请、授权、疑义与订阅"},
    {"name": "notifications", "description": "通知：站内消息"},
    {"name": "security", "description": "安全：平台对外连接的允许名单"},
]

router = APIRouter()


@router.get(DOCS_URL, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    openapi_url = escape(request.app.openapi_url or "", quote=True)
    title = escape(request.app.title)
    return HTMLResponse(
        f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title} — 接口文档</title>
<link rel="stylesheet" href="{VENDOR}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{VENDOR}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""
    )


def install(app: FastAPI) -> None:
    """Serve the docs page, and declare the API-key schemes every operation accepts."""
    app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=TAGS,
            )
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
