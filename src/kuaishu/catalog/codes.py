"""Resource codes (信息资源代码): classification front code + department and sequence back code.

The code is given once, when the entry is created, and never changes or returns: the
per-department counter only grows.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.catalog.models import CatalogSequence
from kuaishu.catalog.schemas import RevisionIn

# The separator between 前段码 and 后段码 is a reading of the standard: kept in one place.
SEPARATOR = "/"


def front_code(data: RevisionIn) -> str:
    """类 (1 digit) + 项 (2) + 目 (3) + 细目; missing parts are zero-filled."""
    return (
        data.resource_class.value
        + (data.subject_code or "00")
        + (data.category_code or "000")
        + data.subcategory_code
    )


def next_sequence(session: Session, department_id: int) -> int:
    """The department's next sequence number, taken under a row lock."""
    row = session.scalar(
        select(CatalogSequence)
        .where(CatalogSequence.department_id == department_id)
        .with_for_update()
    )
    if row is None:
        row = CatalogSequence(department_id=department_id, last=0)
        session.add(row)
        session.flush()
    session.execute(
        update(CatalogSequence)
        .where(CatalogSequence.department_id == department_id)
        .values(last=CatalogSequence.last + 1)
    )
    session.refresh(row)
    return row.last


def new_code(session: Session, department: Department, data: RevisionIn) -> str:
    return (
        f"{front_code(data)}{SEPARATOR}{department.code}{next_sequence(session, department.id):05d}"
    )
