"""Small helpers shared by page handlers: notices after redirects, form failures."""

from __future__ import annotations

from fastapi.responses import RedirectResponse

from kuaishu.i18n import gettext_

# Redirect-after-post notices are codes, never free text, so a crafted link cannot put words
# in the platform's mouth.
NOTICES = {
    "created": "已创建。",
    "saved": "已保存。",
    "disabled": "账户已停用，其会话和 API 密钥已立即失效。",
    "enabled": "账户已启用。",
    "role_assigned": "已授予角色。",
    "role_revoked": "已撤销角色。",
    "password_changed": "密码已修改。",
    "password_reset": "密码已重置，该用户的会话已结束。",
    "key_revoked": "API 密钥已撤销。",
    # The same words whether or not the ID number had an account (registration reveals nothing).
    "registered": "注册已受理：该身份号码此前未注册的，请用新账户登录；已注册过的，请用原账户登录。",
    "granted": "已获得授权。",
    "applied": "申请已提交，提供部门将在答复期限内答复。",
    "approved": "已同意，授权已生成。",
    "rejected": "已拒绝，理由已告知申请方。",
    "resubmitted": "已重新提交，答复期限重新计算。",
    "grant_changed": "授权状态已更新，下一次读取即按新状态执行。",
    "renewed": "已续期。",
    "objected": "疑义已提出，提供部门将在期限内答复。",
    "answered": "已答复，提出方已收到通知。",
    "subscribed": "已登记库表同步，平台将分批把变更写入目标表。",
    "subscription_paused": "订阅已暂停；恢复后从暂停处继续，变更不会丢失。",
    "subscription_active": "订阅已恢复，将在下一次调度时继续投递。",
    "subscription_stopped": "订阅已停止，不再投递。",
}


def notice_text(code: str | None) -> str | None:
    message = NOTICES.get(code or "")
    return gettext_(message) if message else None


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    if notice:
        url += ("&" if "?" in url else "?") + f"done={notice}"
    return RedirectResponse(url, status_code=303)
