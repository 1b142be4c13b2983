"""The catalog's enumerations (STANDARDS.md §1), each with its Chinese label."""

from __future__ import annotations

from enum import StrEnum


class RevisionState(StrEnum):
    """Where a revision stands in review (逐条审核) and publication."""

    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 已提交
    RETURNED = "returned"  # 已退回
    APPROVED = "approved"  # 已通过
    PUBLISHED = "published"  # 已发布（现行）
    SUPERSEDED = "superseded"  # 已被新修订取代
    WITHDRAWN = "withdrawn"  # 已撤销


class EntryStatus(StrEnum):
    """The entry as a whole, as the public sees it."""

    UNPUBLISHED = "unpublished"  # 未发布
    PUBLISHED = "published"  # 已发布
    WITHDRAWN = "withdrawn"  # 已撤销


class ResourceClass(StrEnum):
    """信息资源分类 · 类: 1 基础, 2 主题, 3 部门."""

    BASE = "1"
    TOPIC = "2"
    DEPARTMENT = "3"


class ShareType(StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


class OpenType(StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件开放
    ON_APPLICATION = "on_application"  # 依申请开放
    NOT_OPEN = "not_open"  # 不予开放


class ShareMethod(StrEnum):
    TABLE = "table"  # 共享平台·库表
    FILE = "file"  # 共享平台·文件
    API = "api"  # 共享平台·接口
    OFFLINE = "offline"  # 离线介质


class ResourceFormat(StrEnum):
    DOCUMENT = "document"  # 电子文件
    SPREADSHEET = "spreadsheet"  # 电子表格
    DATABASE = "database"  # 数据库
    IMAGE = "image"  # 图形图像
    MEDIA = "media"  # 流媒体
    SELF_DESCRIBING = "self_describing"  # 自描述格式
    SERVICE = "service"  # 服务接口


class UpdateCycle(StrEnum):
    REALTIME = "realtime"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"
    YEARLY = "yearly"
    IRREGULAR = "irregular"


class ItemType(StrEnum):
    """信息项数据类型 codes."""

    C = "C"  # 字符型
    N = "N"  # 数值型
    Y = "Y"  # 货币型
    D = "D"  # 日期型
    T = "T"  # 日期时间型
    L = "L"  # 逻辑型
    M = "M"  # 备注型
    G = "G"  # 通用型
    B = "B"  # 双精度型
    I = "I"  # 整型  # noqa: E741 - the standard's own code
    F = "F"  # 浮点型


LABELS: dict[type[StrEnum], dict[str, str]] = {
    RevisionState: {
        "draft": "草稿",
        "submitted": "待审核",
        "returned": "已退回",
        "approved": "已通过",
        "published": "已发布",
        "superseded": "已被取代",
        "withdrawn": "已撤销",
    },
    EntryStatus: {"unpublished": "未发布", "published": "已发布", "withdrawn": "已撤销"},
    ResourceClass: {"1": "基础信息资源", "2": "主题信息资源", "3": "部门信息资源"},
    ShareType: {
        "unconditional": "无条件共享",
        "conditional": "有条件共享",
        "not_shared": "不予共享",
    },
    OpenType: {
        "unconditional": "无条件开放",
        "on_application": "依申请开放",
        "not_open": "不予开放",
    },
    ShareMethod: {"table": "库表", "file": "文件", "api": "接口", "offline": "离线介质"},
    ResourceFormat: {
        "document": "电子文件",
        "spreadsheet": "电子表格",
        "database": "数据库",
        "image": "图形图像",
        "media": "流媒体",
        "self_describing": "自描述格式",
        "service": "服务接口",
    },
    UpdateCycle: {
        "realtime": "实时",
        "daily": "每日",
        "weekly": "每周",
        "monthly": "每月",
        "quarterly": "每季度",
        "half_yearly": "每半年",
        "yearly": "每年",
        "irregular": "不定期",
    },
    ItemType: {
        "C": "字符型",
        "N": "数值型",
        "Y": "货币型",
        "D": "日期型",
        "T": "日期时间型",
        "L": "逻辑型",
        "M": "备注型",
        "G": "通用型",
        "B": "双精度型",
        "I": "整型",
        "F": "浮点型",
    },
}

# The 21 domains of the national pilot plan (STANDARDS.md §4).
DOMAINS = (
    "信用服务",
    "医疗卫生",
    "社保就业",
    "公共安全",
    "城建住房",
    "交通运输",
    "教育文化",
    "科技创新",
    "资源能源",
    "生态环境",
    "工业农业",
    "商贸流通",
    "财税金融",
    "安全生产",
    "市场监管",
    "社会救助",
    "法律服务",
    "生活服务",
    "气象服务",
    "地理空间",
    "机构团体",
)

# 基础信息资源 subjects (项) — base data must be shared (Guizhou measures art. 22).
BASE_SUBJECTS = {
    "01": "人口",
    "02": "法人单位",
    "03": "自然资源和空间地理",
    "04": "社会信用",
    "05": "电子证照",
}
BASE_SUBJECTS_MUST_SHARE = {"01", "02", "03", "05"}
TOPIC_SUBJECTS = {
    "01": "公共服务",
    "02": "健康保障",
    "03": "社会保障",
    "04": "食品药品安全",
    "05": "安全生产",
    "06": "价格监管",
    "07": "能源安全",
    "08": "信用体系",
    "09": "城乡建设",
    "10": "社区治理",
    "11": "生态环保",
    "12": "应急维稳",
}

# Security levels: configurable later; these are the defaults of DB52/T 1123 (STANDARDS §3).
SECURITY_LEVELS = ("非敏感", "涉及用户隐私")


def label(value: StrEnum) -> str:
    return LABELS[type(value)][value.value]
