"""What other portals call things: their field names and their categories (data, not interface)."""

from __future__ import annotations

GUANGXI_PORTAL = "广西公共数据开放平台"
# Source categories that say nothing about the domain: proposed as "no domain".
NO_DOMAIN = {"", "其他", "暂无", "无", "其它"}
# Near names other portals use for one of our domains (a proposal; the operator confirms).
NEAR_DOMAINS = {"商业服务": "商贸流通", "医疗健康": "医疗卫生", "卫生健康": "医疗卫生"}

# Field names other portals use, in the order they are tried.
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("信息资源名称", "资源名称", "数据集名称", "名称", "title", "name"),
    "department": ("部门", "来源部门", "提供方", "数源部门", "department", "organization"),
    "summary": ("信息资源摘要", "摘要", "描述", "简介", "description", "notes", "summary"),
    "category": ("领域", "主题", "所属主题", "分类", "category", "topic", "theme"),
    "issued": ("发布时间", "发布日期", "issued", "published", "metadata_created"),
    "modified": (
        "最后更新时间",
        "更新时间",
        "更新日期",
        "modified",
        "updated",
        "metadata_modified",
    ),
    "update_cycle": ("更新频率", "更新周期", "update_cycle", "frequency"),
    "keywords": ("关键字", "关键词", "标签", "keywords", "tags"),
    "formats": ("格式", "文件格式", "formats", "format"),
}
