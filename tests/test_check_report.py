"""scripts/check_report.py: a rendered report's claim pages carry paper-vs-measured, a CSV and a PNG."""

import json
import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_report.py"
check_report = runpy.run_path(str(SCRIPT))


PAGE = "<h4>Paper vs measured</h4><table><tr><td>verdict</td></tr></table>"
FIGURE = '<img src="data:image/png;base64,iVBORw0KGgo=">'


def _result(tmp: Path, name: str, claim: str | None, attachments: list[tuple[str, str]],
            page: str = PAGE + FIGURE, feature: str | None = None) -> None:
    steps = [{"type": "attachment", "link": {"name": n, "contentType": t}} for n, t in attachments]
    labels = [{"name": "feature", "value": claim or feature}] if (claim or feature) else []
    labels += [{"name": "claim", "value": claim}] if claim else []
    d = tmp / "data" / "test-results"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps({"name": name, "status": "passed", "labels": labels,
                                                "descriptionHtml": page,
                                                "steps": [{"type": "step", "steps": steps}]}))


def test_complete_and_incomplete_claims(tmp_path, capsys):
    _result(tmp_path, "a3", "A3", [("A3 paper vs measured", "text/csv"), ("fig", "image/png")])
    _result(tmp_path, "a4_table_only", "A4", [("A4 paper vs measured", "text/csv")])
    _result(tmp_path, "unit", None, [])
    _result(tmp_path, "b3_b6_supporting_check", None, [], page="", feature="B3")  # supports B3: not a claim test
    rows = check_report["claim_tests"](tmp_path)
    assert {r["test"] for r in rows} == {"a3", "a4_table_only"}
    problems = check_report["check"](rows)
    assert problems["A3"] == []
    assert problems["A4"] == ["no test of this claim carries both a CSV table and a PNG figure"]
    assert check_report["main"](["x", str(tmp_path)]) == 1
    assert "1/2 claim ids have complete report pages" in capsys.readouterr().out


def test_missing_report_is_an_error(tmp_path):
    assert check_report["main"](["x", str(tmp_path / "nowhere")]) == 1


def test_a_page_without_its_table_or_inline_figure_is_incomplete(tmp_path):
    atts = [("A5 paper vs measured", "text/csv"), ("fig", "image/png")]
    _result(tmp_path, "a5_no_page", "A5", atts, page="")
    _result(tmp_path, "a6_no_inline_figure", "A6", atts, page=PAGE)
    problems = check_report["check"](check_report["claim_tests"](tmp_path))
    assert problems["A5"] == ["a5_no_page: its page (HTML description) shows no paper-vs-measured table and verdict",
                              "no page of this claim shows its figure inline"]
    assert problems["A6"] == ["no page of this claim shows its figure inline"]


def test_one_attachment_per_table(tmp_path):
    _result(tmp_path, "a3_twice", "A3", [("A3 paper vs measured", "text/csv"), ("A3 paper vs measured", "text/csv"),
                                         ("fig", "image/png")])
    problems = check_report["check"](check_report["claim_tests"](tmp_path))
    assert problems["A3"] == ["a3_twice: attached more than once under one name: A3 paper vs measured"]
