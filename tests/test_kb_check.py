"""`bhxh kb check` validates every content file the service loads, the out-of-scope intents included."""

import re
from pathlib import Path

import pytest

from bhxh.cli import main as cli
from knowledge import out_of_scope


def test_kb_check_counts_the_out_of_scope_intents(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["kb", "check"]) == 0
    assert f"{len(out_of_scope.load_out_of_scope())} out-of-scope intents" in capsys.readouterr().out


def test_kb_check_fails_on_a_bad_out_of_scope_intent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "out_of_scope.yaml"
    bad.write_text("- id: thoi-tiet\n  examples: [a, b, c]\n", encoding="utf-8")
    monkeypatch.setattr(out_of_scope, "OUT_OF_SCOPE_FILE", bad)
    assert cli(["kb", "check"]) == 1
    err = capsys.readouterr().err
    assert "out_of_scope.yaml: entry 'thoi-tiet': field 'reply': is required" in err
    assert "1 problem(s) found." in err


def test_kb_check_takes_the_review_age_from_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def warnings() -> int:
        assert cli(["kb", "check"]) == 0
        return int(re.search(r"(\d+) review warning", capsys.readouterr().out).group(1))

    monkeypatch.setenv("BHXH_REVIEW_AGE_DAYS", "100000")
    few = warnings()
    monkeypatch.setenv("BHXH_REVIEW_AGE_DAYS", "0")  # every entry reviewed before today is flagged too
    assert warnings() > few
    monkeypatch.setenv("BHXH_REVIEW_AGE_DAYS", "soon")
    with pytest.raises(RuntimeError, match="BHXH_REVIEW_AGE_DAYS must be a whole number of days"):
        cli(["kb", "check"])
