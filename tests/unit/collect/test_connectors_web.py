"""Web probe: the tables of an HTML page served on 127.0.0.1 — which table, merged cells, encodings."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.connectors.web import TableParser, grid, header_names
from kuaishu.collect.enums import RunStatus, SourceKind
from tests.unit.collect.sources_support import Reply, add_source, load, make_entry, rows, serve

PAGE = """<!doctype html>
<html><head><meta charset="gbk"><title>统计公报</title></head><body>
<table class="layout"><tr><td>导航</td><td>首页 &gt; 数据</td></tr></table>
<p>表 1 各地区常住人口</p>
<table>
  <thead>
    <tr><th rowspan="2">地区</th><th colspan="2">常住人口（万人）</th><th rowspan="2">备注</th></tr>
    <tr><th>男</th><th>女</th></tr>
  </thead>
  <tbody>
    <tr><td colspan="4">一、贵阳市</td></tr>
    <tr><td> 南明区 </td><td>45.1</td><td>44.3</td><td rowspan="2">含<br>流动人口</td></tr>
    <tr><td>云岩区</td><td>52.0</td><td>51.2</td></tr>
    <tr><td>花溪区</td><td>33.8</td><td>32.9</td><td></td></tr>
  </tbody>
</table>
</body></html>
"""


def _entry_items() -> list[tuple[str, str]]:
    return [("地区", "C"), ("男性人口", "N"), ("女性人口", "N"), ("备注", "C")]


MAPPING = {"男性人口": "常住人口（万人）-男", "女性人口": "常住人口（万人）-女"}


def test_the_chosen_table_loads_with_merged_cells_unfolded(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, _entry_items())
    body = PAGE.encode("gbk")  # declared in <meta>, not in the Content-Type
    with serve(lambda _seen: Reply(body=body, content_type="text/html")) as server:
        by_index = add_source(
            factory, setup, SourceKind.WEB, {"url": server.url, "table_index": 1}, mapping=MAPPING
        )
        by_text = add_source(
            factory,
            setup,
            SourceKind.WEB,
            {"url": server.url, "table_match": "花溪区"},
            mapping=MAPPING,
        )
        first = load(factory, setup, by_index)
        second = load(factory, setup, by_text)
    assert first.status == second.status == RunStatus.SUCCEEDED, first.error_message
    assert rows(factory, setup.entry_id, "2") == [
        ("花溪区", 33.8, 32.9, None),
        ("南明区", 45.1, 44.3, "含 流动人口"),
        ("云岩区", 52.0, 51.2, "含 流动人口"),  # the rowspan repeats down
    ]
    skipped = [line for line in first.log if line["message"] == "跳过非数据行"]
    assert skipped == [
        {
            "at": skipped[0]["at"],
            "message": "跳过非数据行",
            "line": 3,
            "reason": "子标题行",
            "text": "一、贵阳市",
        }
    ]


def test_a_missing_table_is_named(factory: sessionmaker[Session], data_dir: Path) -> None:
    setup = make_entry(factory, _entry_items())
    page = PAGE.encode("gbk")
    with serve(lambda _seen: Reply(body=page, content_type="text/html; charset=gbk")) as server:
        third = add_source(factory, setup, SourceKind.WEB, {"url": server.url, "table_index": 2})
        absent = add_source(
            factory, setup, SourceKind.WEB, {"url": server.url, "table_match": "GDP"}
        )
        missing = load(factory, setup, third)
        unmatched = load(factory, setup, absent)
    assert missing.error_code == unmatched.error_code == "web_table_not_found"
    assert "共 2 个" in (missing.error_message or "")
    assert "GDP" in (unmatched.error_message or "")


def test_a_page_that_fails_is_named(factory: sessionmaker[Session], data_dir: Path) -> None:
    setup = make_entry(factory, _entry_items())
    with serve(lambda _seen: Reply(status=503, body="busy", content_type="text/plain")) as server:
        source_id = add_source(factory, setup, SourceKind.WEB, {"url": server.url + "/stats"})
        run = load(factory, setup, source_id)
    assert run.error_code == "source_http_error"
    assert "503" in (run.error_message or "") and "/stats" in (run.error_message or "")


def test_header_from_the_first_row_when_there_is_no_th() -> None:
    parser = TableParser()
    parser.feed(
        "<table><tr><td>名称</td><td>名称</td><td></td></tr><tr><td>a</td><td>b</td><td>c</td></tr>"
        "<tr><td>d</td></tr></table>"
    )
    cells = grid(parser.tables[0])
    assert header_names(cells[:1]) == ["名称", "名称_2", "列3"]
    assert cells[1:] == [["a", "b", "c"], ["d", "", ""]]


def test_a_nested_table_is_a_table_of_its_own() -> None:
    parser = TableParser()
    parser.feed(
        "<table><tr><td>外<table><tr><td>内</td></tr></table>层</td><td>x</td></tr></table>"
    )
    assert [grid(t) for t in parser.tables] == [[["外层", "x"]], [["内"]]]
