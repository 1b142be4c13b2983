"""The demo exchange: 省人社厅 (the demo ``consumer``) holds an unconditional grant on the air
quality stations and has applied for the conditional provincial population data, which 省统计局's
chief data officer (the demo ``officer``) has yet to answer — so both sides have something to do
on first sign-in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.auth import actor_for
from kuaishu.accounts.models import User
from kuaishu.catalog.models import CatalogEntry
from kuaishu.db import transaction
from kuaishu.share import services
from kuaishu.share.enums import AccessMethod
from kuaishu.share.models import ShareApplication, ShareGrant

GRANTED = "全国空气质量监测点位"
ASKED = "分省年度人口抽样调查数据"


@dataclass(frozen=True)
class ExchangeDemoReport:
    grant: int | None
    application: int | None


def build_exchange_demo(
    factory: sessionmaker[Session], consumer: str = "consumer"
) -> ExchangeDemoReport:
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == consumer))
        entries = {
            e.name: e
            for e in session.scalars(
                select(CatalogEntry).where(CatalogEntry.name.in_([GRANTED, ASKED]))
            )
        }
        if user is None or len(entries) < 2 or session.scalar(select(ShareGrant.id).limit(1)):
            return ExchangeDemoReport(None, None)
        actor = actor_for(user, auth_method="cli")
        grant = services.apply(
            session,
            actor=actor,
            entry=entries[GRANTED],
            request=services.Request(
                purpose="就业困难人员所在地环境情况核对",
                methods=[
                    AccessMethod.QUERY,
                    AccessMethod.LOOKUP,
                    AccessMethod.DOWNLOAD,
                    AccessMethod.SUBSCRIBE,
                ],
            ),
        )
        application = services.apply(
            session,
            actor=actor,
            entry=entries[ASKED],
            request=services.Request(
                purpose="城乡居民养老保险参保率测算",
                legal_basis="《社会保险法》第七十三条；《贵州省政务数据资源管理暂行办法》第二十二条",
                methods=[AccessMethod.QUERY, AccessMethod.DOWNLOAD],
                expected_volume="每月约 20 次",
            ),
        )
        assert isinstance(grant, ShareGrant) and isinstance(application, ShareApplication)
        return ExchangeDemoReport(grant.id, application.id)
