"""The Guangxi portal scrape: slid records repaired, ambiguous ones refused, datasets distinct."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from kuaishu.catalog.enums import UpdateCycle
from kuaishu.catalog.guangxi import LABELS, load_guangxi_catalog, unshift
from tests.samples import sample, uses

SAMPLE = sample("guangxi_portal_catalog.jsonl")
pytestmark = uses(SAMPLE)


def test_every_record_is_read_and_the_slide_is_undone() -> None:
    raw = [json.loads(line) for line in SAMPLE.open(encoding="utf-8")]
    slid = sum(1 for r in raw if r["info"].get("所属行业") in LABELS)
    load = load_guangxi_catalog(SAMPLE)
    assert load.records == len(raw) == 5411
    assert load.repaired == slid and 2900 < slid < 3200
    assert len(load.datasets) + 0 == len({d.name + d.department for d in load.datasets})
    assert len({d.department for d in load.datasets}) == 154


def test_no_field_holds_another_fields_name() -> None:
    for dataset in load_guangxi_catalog(SAMPLE).datasets:
        for value in (dataset.name, dataset.department, dataset.summary, dataset.industry):
            assert value not in LABELS


def test_a_slid_record_comes_out_right() -> None:
    info = {
        "来源部门": "自治区应急厅",
        "数据量": "1",
        "开放状态": "无条件开放",
        "所属行业": "发布时间",
        "2020-12-16 20:45:14": "最后更新时间",
        "2021-04-15 01:05:17": "更新频率",
        "每天": "部门电话",
        "暂无": "描述",
    }
    fixed, repaired = unshift(info)
    assert repaired
    assert fixed["发布时间"] == "2020-12-16 20:45:14"
    assert fixed["最后更新时间"] == "2021-04-15 01:05:17"
    assert fixed["更新频率"] == "每天"
    assert "所属行业" not in fixed


def test_a_known_dataset() -> None:
    datasets = {d.name: d for d in load_guangxi_catalog(SAMPLE).datasets}
    green = datasets["绿色学校、绿色社区信息"]
    assert green.department == "南宁市生态环境局"
    assert green.domain == "生态环境"
    assert set(green.formats) >= {"rdf", "xml", "json"}
    assert green.update_cycle == UpdateCycle.IRREGULAR
    assert green.published is not None and green.published.year == 2021


def test_update_cycles_of_slid_records_are_recovered() -> None:
    cycles = Counter(d.update_cycle for d in load_guangxi_catalog(SAMPLE).datasets)
    assert cycles[UpdateCycle.DAILY] > 0 and cycles[UpdateCycle.REALTIME] > 0


def test_an_ambiguous_record_is_rejected_with_its_reason(tmp_path: Path) -> None:
    good = {
        "name": "样例_0.csv",
        "topic": "生态环境",
        "info": {
            "来源部门": "某局",
            "数据量": "1",
            "开放状态": "无条件开放",
            "所属行业": "农业",
            "发布时间": "2021-06-22 18:26:40",
            "最后更新时间": "2021-06-23 01:20:06",
            "更新频率": "每年",
        },
    }
    mangled = {
        "name": "坏记录_0.csv",
        "topic": "生态环境",
        "info": {
            "来源部门": "某局",
            "所属行业": "发布时间",
            "2021-06-22 18:26:40": "胡乱的值",
            "x": "y",
        },
    }
    bad_date = {
        "name": "坏日期_0.csv",
        "topic": "",
        "info": {"来源部门": "某局", "发布时间": "昨天"},
    }
    path = tmp_path / "catalog.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in (good, mangled, bad_date)),
        encoding="utf-8",
    )
    load = load_guangxi_catalog(path)
    assert [d.name for d in load.datasets] == ["样例"]
    assert [r.line for r in load.rejected] == [2, 3]
    assert "不是字段名" in load.rejected[0].reason
