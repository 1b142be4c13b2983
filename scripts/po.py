"""Developer helper: merge new msgids into the English catalog (translations stay yours to write).

    .venv/bin/python scripts/po.py            # list msgids that lack an English translation
    .venv/bin/python scripts/po.py --write F  # merge a JSON/py dict {msgid: English} from file F
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from kuaishu.messages import all_messages

PO = Path(__file__).resolve().parents[1] / "src/kuaishu/locale/en/LC_MESSAGES/messages.po"


def load() -> Catalog:
    if PO.exists():
        with PO.open("rb") as fh:
            return read_po(fh, locale="en")
    return Catalog(locale="en", project="kuaishu", charset="utf-8")


def main() -> None:
    catalog = load()
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        table = runpy.run_path(sys.argv[2])["EN"]
        for msgid, text in table.items():
            catalog.add(msgid, text)
        PO.parent.mkdir(parents=True, exist_ok=True)
        with PO.open("wb") as fh:
            write_po(fh, catalog, sort_output=True, width=100, omit_header=False)
    missing = [m for m in all_messages() if not (catalog.get(m) and catalog.get(m).string)]
    for msgid in missing:
        print(msgid)
    print(f"{len(missing)} without English", file=sys.stderr)


if __name__ == "__main__":
    main()
