"""States and methods of the sharing exchange."""

from __future__ import annotations

from enum import StrEnum


class ApplicationState(StrEnum):
    """A conditional-share application (有条件共享申请)."""

    SUBMITTED = "submitted"  # 已提交，待提供部门答复
    APPROVED = "approved"  # 已同意（已生成授权）
    REJECTED = "rejected"  # 已拒绝（须说明理由）
    WITHDRAWN = "withdrawn"  # 申请方已撤回


class GrantState(StrEnum):
    """A grant as stored; an active grant past its expiry reads as expired."""

    ACTIVE = "active"  # 有效
    SUSPENDED = "suspended"  # 暂停
    REVOKED = "revoked"  # 已撤销
    EXPIRED = "expired"  # 已过期（由有效期推出，不存储）


class AccessMethod(StrEnum):
    """How a grant lets the consumer take the data (共享方式)."""

    LOOKUP = "lookup"  # 联机查询
    DOWNLOAD = "download"  # 批量下载
    QUERY = "query"  # 接口查询
    SUBSCRIBE = "subscribe"  # 数据订阅（增量变更：拉取或推送）
    SYNC = "sync"  # 库表同步（写入使用部门的数据库）


class SubscriptionMode(StrEnum):
    """How a subscription's changes reach the consumer."""

    PUSH = "push"  # 推送到登记的接收地址
    SYNC = "sync"  # 同步到使用部门的数据库表


class SubscriptionState(StrEnum):
    ACTIVE = "active"  # 运行中
    PAUSED = "paused"  # 已暂停（使用部门暂停）
    STOPPED = "stopped"  # 已停止（不再投递）


# application state → the states it may move to
APPLICATION_TRANSITIONS: dict[ApplicationState, frozenset[ApplicationState]] = {
    ApplicationState.SUBMITTED: frozenset(
        {ApplicationState.APPROVED, ApplicationState.REJECTED, ApplicationState.WITHDRAWN}
    ),
    ApplicationState.REJECTED: frozenset({ApplicationState.SUBMITTED}),  # revised, resubmitted
    ApplicationState.APPROVED: frozenset(),
    ApplicationState.WITHDRAWN: frozenset(),
}
GRANT_TRANSITIONS: dict[GrantState, frozenset[GrantState]] = {
    GrantState.ACTIVE: frozenset({GrantState.SUSPENDED, GrantState.REVOKED}),
    GrantState.SUSPENDED: frozenset({GrantState.ACTIVE, GrantState.REVOKED}),
    GrantState.REVOKED: frozenset(),
    GrantState.EXPIRED: frozenset(),
}
LABELS = {
    "ApplicationState": {
        ApplicationState.SUBMITTED: "待答复",
        ApplicationState.APPROVED: "已同意",
        ApplicationState.REJECTED: "已拒绝",
        ApplicationState.WITHDRAWN: "已撤回",
    },
    "GrantState": {
        GrantState.ACTIVE: "有效",
        GrantState.SUSPENDED: "暂停",
        GrantState.REVOKED: "已撤销",
        GrantState.EXPIRED: "已过期",
    },
    "AccessMethod": {
        AccessMethod.LOOKUP: "联机查询",
        AccessMethod.DOWNLOAD: "批量下载",
        AccessMethod.QUERY: "接口查询",
        AccessMethod.SUBSCRIBE: "数据订阅",
        AccessMethod.SYNC: "库表同步",
    },
    "SubscriptionMode": {SubscriptionMode.PUSH: "推送", SubscriptionMode.SYNC: "库表同步"},
    "SubscriptionState": {
        SubscriptionState.ACTIVE: "运行中",
        SubscriptionState.PAUSED: "已暂停",
        SubscriptionState.STOPPED: "已停止",
    },
}
