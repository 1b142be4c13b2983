"""Every domain's tables, imported in one place so metadata and migrations see them all."""

from __future__ import annotations

from kuaishu.accounts import models as accounts_models
from kuaishu.catalog import models as catalog_models
from kuaishu.clean import models as clean_models
from kuaishu.collect import models as collect_models
from kuaishu.db import Base
from kuaishu.notify import models as notify_models
from kuaishu.security import models as security_models
from kuaishu.share import models as share_models
from kuaishu.store import models as store_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "catalog_models",
    "clean_models",
    "collect_models",
    "metadata",
    "notify_models",
    "security_models",
    "share_models",
    "store_models",
]
