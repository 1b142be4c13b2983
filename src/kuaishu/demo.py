"""The demo region: a province, two cities, a dozen departments and a user for each role."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from stdnum.cn import uscc

from kuaishu.accounts import services
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, Region, User
from kuaishu.accounts.roles import LevelKind, Role
from kuaishu.catalog.demo import CatalogDemoReport
from kuaishu.catalog.models import CatalogEntry
from kuaishu.collect.demo import DataDemoReport
from kuaishu.errors import Conflict
from kuaishu.share.demo import ExchangeDemoReport

DEMO_PASSWORD = "Kuaishu@2026"  # noqa: S105 - the published demo password

REGIONS = (
    ("520000", "贵州省", LevelKind.PROVINCE, None),
    ("520100", "贵阳市", LevelKind.CITY, "520000"),
    ("520300", "遵义市", LevelKind.CITY, "520000"),
)

# (code, name, region code, organisation-code stem)
DEPARTMENTS = (
    ("52001", "贵州省大数据发展管理局", "520000", "MB1526010"),
    ("52002", "贵州省公安厅", "520000", "MB1526011"),
    ("52003", "贵州省市场监督管理局", "520000", "MB1526012"),
    ("52004", "贵州省人力资源和社会保障厅", "520000", "MB1526013"),
    ("52005", "贵州省自然资源厅", "520000", "MB1526014"),
    ("52006", "贵州省统计局", "520000", "MB1526015"),
    ("52007", "贵州省卫生健康委员会", "520000", "MB1526016"),
    ("52008", "贵州省生态环境厅", "520000", "MB1526017"),
    ("52101", "贵阳市大数据发展管理委员会", "520100", "MB1526018"),
    ("52102", "贵阳市教育局", "520100", "MB1526019"),
    ("52103", "贵阳市交通委员会", "520100", "MB152601A"),
    ("52301", "遵义市民政局", "520300", "MB152601B"),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    department_code: str
    role: Role | None
    what: str


ACCOUNTS = (
    DemoAccount(
        "operator", "王运营", "52001", Role.PLATFORM_OPERATOR, "平台运营者：管理行政区、部门、用户"
    ),
    DemoAccount(
        "auditor", "李审计", "52001", Role.SECURITY_AUDITOR, "安全审计员：查阅、导出审计日志"
    ),
    DemoAccount(
        "admin.stats", "赵管理", "52006", Role.DEPT_ADMIN, "部门管理员（省统计局）：管理本部门用户"
    ),
    DemoAccount("cataloguer", "钱编目", "52006", Role.CATALOGUER, "编目员（省统计局）：编制目录"),
    DemoAccount("reviewer", "孙审核", "52006", Role.REVIEWER, "审核员（省统计局）：审核目录"),
    DemoAccount("officer", "周数据", "52006", Role.DATA_OFFICER, "首席数据官（省统计局）"),
    DemoAccount(
        "consumer", "吴使用", "52004", Role.CONSUMER, "使用部门用户（省人社厅）：申请共享数据"
    ),
)

PUBLIC_ACCOUNTS = (
    # Generated, checksum-valid numbers (GB 11643 / GB 32100) — no real person or company.
    ("citizen", "郑公众", "11010519491231002X", None, None),
    ("enterprise", "冯企业", "520102199003070030", "91520100MA6DKQ6G3Q", "贵阳块数科技有限公司"),
)

CLI = Actor(
    user_id=None,
    username="demo",
    auth_method="cli",
    roles=frozenset({(0, Role.PLATFORM_OPERATOR)}),
)


def credit_code_for(stem: str, region_code: str) -> str:
    """A checksum-valid credit code for a government organ (机关, registration type 11)."""
    body = f"11{region_code}{stem}"
    return body + uscc.calc_check_digit(body)


class DemoRefused(Conflict):
    code = "demo_refused"
    message = (
        "数据库中已有数据（{what}），不能在其中建立演示平台：演示账户的密码是公开的。"
        "请换一个空的数据目录（KUAISHU_DATA_DIR）或数据库（KUAISHU_DATABASE_URL）再运行 kuaishu demo。"
    )


def held_data(session: Session) -> list[str]:
    """What the database already holds that the demo would sit beside, e.g. ["3 个用户"]."""
    counted = (
        (User, "个用户"),
        (Region, "个行政区"),
        (Department, "个部门"),
        (CatalogEntry, "个目录条目"),
    )
    found: list[str] = []
    for model, label in counted:
        count = session.scalar(select(func.count()).select_from(model)) or 0
        if count:
            found.append(f"{count} {label}")
    return found


def build_demo(session: Session) -> bool:
    """Create the demo region unless it exists; True when it was created now. Refuses a
    database that holds anything else: the demo's accounts share one published password."""
    built = session.scalar(select(Region.id).where(Region.code == "520000")) is not None and (
        session.scalar(select(User.id).where(User.username == ACCOUNTS[0].username)) is not None
    )
    if built:
        return False
    held = held_data(session)
    if held:
        raise DemoRefused(what="、".join(held), details={"held": held})
    regions: dict[str, Region] = {}
    for code, name, level, parent in REGIONS:
        parent_id = regions[parent].id if parent else None
        regions[code] = services.create_region(
            session, actor=CLI, code=code, name=name, level=level, parent_id=parent_id
        )
    departments: dict[str, Department] = {}
    for code, name, region_code, stem in DEPARTMENTS:
        departments[code] = services.create_department(
            session,
            actor=CLI,
            code=code,
            name=name,
            credit_code=credit_code_for(stem, region_code),
            region_id=regions[region_code].id,
            contact="0851-8699XXXX",
        )
    for account in ACCOUNTS:
        services.create_staff_user(
            session,
            actor=CLI,
            username=account.username,
            display_name=account.display_name,
            password=DEMO_PASSWORD,
            department_id=departments[account.department_code].id,
            roles=[account.role] if account.role else [],
        )
    for username, name, id_number, credit, organization in PUBLIC_ACCOUNTS:
        services.register_public_user(
            session,
            actor=CLI,
            username=username,
            display_name=name,
            password=DEMO_PASSWORD,
            id_number=id_number,
            credit_code=credit,
            organization=organization,
        )
    return True


def build_catalog(session: Session) -> CatalogDemoReport:
    """The demo catalog: data elements, the Guangxi portal's real catalog, workflow examples."""
    from kuaishu.catalog.demo import build_catalog_demo

    return build_catalog_demo(session, CLI)


def build_data(factory: sessionmaker[Session]) -> DataDemoReport:
    """The demo data: each real sample file behind a published entry, loaded as its version."""
    from kuaishu.collect.demo import build_data_demo

    return build_data_demo(factory, CLI)


def build_exchange(factory: sessionmaker[Session]) -> ExchangeDemoReport:
    """The demo exchange: a grant held and an application waiting for an answer."""
    from kuaishu.share.demo import build_exchange_demo

    return build_exchange_demo(factory)
