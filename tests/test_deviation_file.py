"""--deviations FILE (harness/target.py): formats, target matching and clear errors."""

from __future__ import annotations

import json

import pytest

from harness.target import EXTERNAL, DeviationFileError, Target, load_deviation_file, parse_deviations

IDS = {"B3", "B6"}
CHAIN = Target(EXTERNAL, "external L2", "http://127.0.0.1:8011", 260, "zkSync/v28.1.0")


def test_json_and_toml_read_the_same(tmp_path):
    j = tmp_path / "d.json"
    j.write_text(json.dumps({"B3": {"smoke": "flat 900 TPS"},
                             "targets": [{"chain_id": 260, "deviations": {"B6": {"paper": "stable"}}}]}))
    t = tmp_path / "d.toml"
    t.write_text('[B3]\nsmoke = "flat 900 TPS"\n\n[[targets]]\nchain_id = 260\n[targets.deviations.B6]\n'
                 'paper = "stable"\n')
    for path in (j, t):
        f = load_deviation_file(path, IDS)
        assert f.lookup("B3", "smoke", CHAIN).text == "flat 900 TPS"
        assert f.lookup("B6", "paper", CHAIN).text == "stable"
        assert f.lookup("B6", "smoke", CHAIN) is None
        assert f.needs_identity


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"B99": {"smoke": "x"}}, "unknown claim id 'B99'"),
        ({"B3": {"fast": "x"}}, "unknown profile 'fast'"),
        ({"B3": {"smoke": ""}}, "non-empty string"),
        ({"B3": "x"}, "profile -> reason"),
        ([1], "top level must be a mapping"),
        ({"targets": {"chain_id": 1}}, "'targets' must be a list"),
        ({"targets": [{"chain_id": 1}]}, "'deviations' mapping"),
        ({"targets": [{"chainid": 1, "deviations": {}}]}, "unknown: chainid"),
        ({"targets": [{"kind": "mine", "deviations": {}}]}, "kind must be one of"),
        ({"targets": [{"chain_id": "260", "deviations": {}}]}, "chain_id must be an integer"),
        ({"targets": [{"url": "http://*", "deviations": {"B7": {"smoke": "x"}}}]}, "unknown claim id 'B7'"),
    ],
)
def test_malformed_files_are_clear_errors(data, message):
    with pytest.raises(DeviationFileError, match=message.replace("(", r"\(")):
        parse_deviations(data, IDS, "d.json")


def test_unreadable_and_undecodable_files(tmp_path):
    with pytest.raises(DeviationFileError, match="cannot read"):
        load_deviation_file(tmp_path / "missing.json", IDS)
    bad = tmp_path / "d.json"
    bad.write_text("{B3: ")
    with pytest.raises(DeviationFileError, match="not valid JSON"):
        load_deviation_file(bad, IDS)
    bad = tmp_path / "d.toml"
    bad.write_text("[B3\n")
    with pytest.raises(DeviationFileError, match="not valid TOML"):
        load_deviation_file(bad, IDS)


def test_identity_patterns_match_url_and_client():
    f = parse_deviations({"targets": [{"kind": "external", "url": "http://127.0.0.1:*", "client_version": "zkSync*",
                                       "deviations": {"B3": {"smoke": "theirs"}}}]}, IDS)
    assert f.lookup("B3", "smoke", CHAIN).text == "theirs"
    assert f.lookup("B3", "smoke", Target(EXTERNAL, "x", "https://rpc.example", 260, "zkSync/1")) is None
    assert f.lookup("B3", "smoke", Target(url="http://127.0.0.1:1", client_version="zkSync/1")) is None  # embedded
