"""Identifier checks for accounts: department codes, credit codes, citizen ID numbers.

Checksums come from python-stdnum (``stdnum.cn.ric``, ``stdnum.cn.uscc``); see STANDARDS.md §2.
"""

from __future__ import annotations

import re

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from kuaishu.accounts.roles import LevelKind
from kuaishu.errors import ValidationFailed

# 2 province digits, 1 city character (0 = provincial; letters after 9 for regions with more
# than nine cities), 1 county character (0 or Q–Z = city level), 1 more.
_DEPT_CODE = re.compile(r"^[0-9]{2}[0-9A-P][0-9Q-Z][0-9A-Z]$")
_CITY_LEVEL_COUNTY_CHARS = set("0QRSTUVWXYZ")


def normalize_credit_code(value: str) -> str:
    """The canonical credit code, or :class:`ValidationFailed` naming what is wrong."""
    try:
        return str(uscc.validate(value.strip().upper()))
    except StdnumError as exc:
        raise ValidationFailed(
            "统一社会信用代码“{value}”无效：应为 18 位且校验位正确。",
            code="invalid_credit_code",
            details={"field": "credit_code"},
            value=value,
        ) from exc


def normalize_id_number(value: str) -> str:
    """The canonical 18-character citizen ID number, or :class:`ValidationFailed`."""
    cleaned = value.strip().upper()
    if len(cleaned) != 18:
        raise ValidationFailed(
            "公民身份号码应为 18 位。", code="invalid_id_number", details={"field": "id_number"}
        )
    try:
        return str(ric.validate(cleaned))
    except StdnumError as exc:
        raise ValidationFailed(
            "公民身份号码无效：出生日期或校验位不正确。",
            code="invalid_id_number",
            details={"field": "id_number"},
        ) from exc


def mask_id_number(value: str) -> str:
    """Show the first 6 and last 4 characters only (GB/T 35273 practice)."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def validate_department_code(code: str, *, region_code: str, level: LevelKind) -> str:
    """Check a 5-character GB/T 21063.5 department code against its region and level."""
    value = code.strip().upper()
    if not _DEPT_CODE.match(value):
        raise ValidationFailed(
            "部门代码“{value}”格式不符：应为 5 位，前 2 位为省份数字，第 4 位为数字或 Q–Z。",
            code="invalid_department_code",
            details={"field": "code"},
            value=value,
        )
    if value[:2] != region_code[:2]:
        raise ValidationFailed(
            "部门代码前两位应为所属省份代码 {expected}。",
            code="invalid_department_code",
            details={"field": "code"},
            expected=region_code[:2],
        )
    is_provincial = value[2] == "0"
    is_city_level = not is_provincial and value[3] in _CITY_LEVEL_COUNTY_CHARS
    actual = (
        LevelKind.PROVINCE
        if is_provincial
        else (LevelKind.CITY if is_city_level else LevelKind.COUNTY)
    )
    if actual != level:
        raise ValidationFailed(
            "部门代码“{value}”的层级与所属行政区的层级不一致。",
            code="invalid_department_code",
            details={"field": "code", "code_level": actual, "region_level": level},
            value=value,
        )
    return value
