"""A department with a cataloguer, a reviewer and a data officer; a police bureau that is the
source of 公民身份号码; API keys for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import DataElement
from tests import factories as f


@dataclass
class Bureau:
    department: Department
    police: Department
    cataloguer: dict[str, str]
    reviewer: dict[str, str]
    officer: dict[str, str]
    operator: dict[str, str]
    outsider: dict[str, str]
    cataloguer_reviewer: dict[str, str]


@pytest.fixture
def bureau(db: Session) -> Bureau:
    department = f.department(db, name="省统计局")
    police = f.department(db, name="省公安厅")
    db.add(
        DataElement(
            name="公民身份号码",
            variants=["身份证号", "身份证号码", "公民身份证号"],
            authority_department_id=police.id,
        )
    )

    def key(*roles: Role, dept: Department = department) -> dict[str, str]:
        return {"X-API-Key": f.api_key(db, f.user(db, roles=list(roles), dept=dept))}

    made = Bureau(
        department=department,
        police=police,
        cataloguer=key(Role.CATALOGUER),
        reviewer=key(Role.REVIEWER),
        officer=key(Role.DATA_OFFICER),
        operator=key(Role.PLATFORM_OPERATOR, dept=police),
        outsider=key(Role.CATALOGUER, dept=police),
        cataloguer_reviewer=key(Role.CATALOGUER, Role.REVIEWER),
    )
    db.commit()
    return made


def entry_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "常住人口统计表",
        "summary": "全省分地区年末常住人口",
        "resource_class": "1",
        "subject_code": "01",
        "category_code": "001",
        "resource_format": "spreadsheet",
        "share_type": "unconditional",
        "share_methods": ["api", "file"],
        "open_type": "unconditional",
        "update_cycle": "yearly",
        "domain": "社保就业",
        "keywords": ["人口", "统计年鉴"],
        "contact": "0851-0000000",
        "items": [
            {"name": "地区", "type_code": "C", "length": 50, "is_key": True},
            {"name": "年末常住人口", "type_code": "N", "description": "万人"},
        ],
    }
    body.update(changes)
    return body
