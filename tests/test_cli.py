"""The `bhxh` command line: the interactive `ask` loop reads picks like every channel."""

from __future__ import annotations

import builtins
import json
import os
import pty
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.service import engine

from bot.conversation import parse_pick
from bot.engine import Engine

CHOICES_Q = "đóng bhxh tự nguyện bao nhiêu"


@pytest.mark.parametrize(("text", "pick"), [("1", 1), (" 2 ", 2), ("12", 12), ("²", None), ("①", None),
                                            ("123", None), ("", None), ("hai", None), (None, None)])
def test_parse_pick_reads_only_plain_decimal_numbers(text, pick):
    assert parse_pick(text) == pick


def _interactive(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lines: list[str]) -> str:
    from bhxh.cli import main

    feed: Iterator[str] = iter(lines)

    def fake_input(_prompt: str = "") -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(Engine, "from_settings", classmethod(lambda cls, settings=None: engine()))
    monkeypatch.setattr(builtins, "input", fake_input)
    assert main(["ask"]) == 0
    return capsys.readouterr().out


def test_interactive_ask_does_not_crash_on_a_superscript_digit_after_choices(monkeypatch, capsys):
    """"²".isdigit() is True but int("²") raises: the old loop crashed here."""
    assert engine().ask(CHOICES_Q).choices
    out = _interactive(monkeypatch, capsys, [CHOICES_Q, "²"])
    assert "1. " in out


def test_interactive_ask_picks_a_pending_choice_by_number(monkeypatch, capsys):
    first = engine().ask(CHOICES_Q).choices[0]
    expected = engine().entry_reply(first.entry_id)
    assert expected is not None
    out = _interactive(monkeypatch, capsys, [CHOICES_Q, "1"])
    assert expected.text.splitlines()[0] in out.split(first.question, 1)[1]


# ------------------------------------------------------------ bhxh calc: help, examples, defaults (issue 17 item 6)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from bhxh.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # --help and argparse errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_calc_help_shows_an_example_for_every_calculator_and_each_runs(capsys):
    from bot.calc_cli import EXAMPLES

    code, out, _ = _main(["calc", "--help"], capsys)
    assert code == 0 and len(EXAMPLES) == 7
    for command, _what, example in EXAMPLES:
        assert example in out and example.split()[2] == command
        code, result, err = _main([*shlex.split(example)[1:], "--json"], capsys)
        assert code == 0 and not err and json.loads(result)["calculator"] == command
    code, out, _ = _main(["calc", "mot-lan", "--help"], capsys)
    assert "Ví dụ:\n  bhxh calc mot-lan --nam 9" in out


def test_calc_lump_sum_takes_plain_years_and_abbreviations_are_not_guessed(capsys):
    """`bhxh calc mot-lan --nam 9` used to stop with "ambiguous option" (--nam-truoc-2014 or --nam-tu-2014?)."""
    code, out, _ = _main(["calc", "mot-lan", "--nam", "9", "--binh-quan", "6tr", "--ngay", "2026-12-03", "--json"],
                         capsys)
    assert code == 0 and json.loads(out)["amount"] == 9 * 2 * 6_000_000  # 2 months a year from 2014
    code, _, err = _main(["calc", "mot-lan", "--nam", "9", "--nam-tu-2014", "3", "--binh-quan", "6tr"], capsys)
    assert code == 2 and "không dùng cả hai" in err
    code, _, err = _main(["calc", "mot-lan", "--nam-t", "9", "--binh-quan", "6tr"], capsys)
    assert code == 2 and "unrecognized arguments: --nam-t" in err


def test_calc_scheme_defaults_to_compulsory_for_a_worker(capsys):
    base = ["calc", "luong-huu", "--gioi-tinh", "nam", "--ngay-sinh", "1968-12-01", "--nam", "20",
            "--binh-quan", "8tr", "--ngay", "2026-12-03", "--json"]
    default = json.loads(_main(base, capsys)[1])
    assert default == json.loads(_main([*base, "--che-do", "bat-buoc"], capsys)[1])
    assert "Luật 41/2024/QH15, Điều 66, khoản 1" in default["sources"]  # the compulsory scheme's pension article
    voluntary = json.loads(_main([*base, "--che-do", "tu-nguyen"], capsys)[1])
    assert "Luật 41/2024/QH15, Điều 99, khoản 1" in voluntary["sources"]
    lump = json.loads(_main(["calc", "mot-lan", "--nam", "9", "--binh-quan", "6tr", "--json"], capsys)[1])
    assert lump["scheme"] == "compulsory"


@pytest.mark.parametrize(("question", "scheme"), [
    ("tôi là công nhân nam 58 tuổi đóng 20 năm lương 8 triệu thì lương hưu bao nhiêu", "compulsory"),
    ("e làm cty được 9 năm, lương 6tr, rút bhxh 1 lần được bao nhiêu", "compulsory"),
    ("nam 58 tuổi đóng bhxh tự nguyện 20 năm mức 5 triệu lương hưu bao nhiêu", "voluntary"),
    ("nam 58 tuổi đóng 20 năm mức 5 triệu lương hưu bao nhiêu", None),
])
def test_chat_calculator_reads_the_scheme_from_the_question(question, scheme):
    from knowledge.calc_intent import detect_calculator_request

    request = detect_calculator_request(question)
    assert request is not None and request.scheme == scheme


# ------------------------------------------------------------ progress lines (issue 17 item 6)


@pytest.fixture
def progress_mode():
    from retrieval import progress

    yield progress
    progress.configure("auto")


def test_demo_traffic_reports_progress_on_stderr(tmp_path, monkeypatch, capsys, progress_mode):
    monkeypatch.setenv("BHXH_DATA_DIR", str(tmp_path))
    code, out, err = _main(["--progress", "always", "demo-traffic", "--db", str(tmp_path / "demo.db"), "--days", "3",
                            "--per-day", "4", "--fast"], capsys)
    assert code == 0 and "questions" in out
    assert re.search(r"^bhxh: demo traffic: day 1/3 \(33%\), \d+ questions$", err, re.M)
    assert "bhxh:" not in out  # stdout stays the command's result
    code, _, err = _main(["--progress", "never", "demo-traffic", "--db", str(tmp_path / "demo2.db"), "--days", "2",
                          "--per-day", "3", "--fast"], capsys)
    assert code == 0 and err == ""


def _stderr_of(argv: list[str], env: dict[str, str], *, terminal: bool) -> str:
    """Run `bhxh <argv>` in a child process with stderr on a pseudo-terminal or on a pipe."""
    command = [sys.executable, "-c", "import sys; from bhxh.cli import main; sys.exit(main(sys.argv[1:]))", *argv]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
        return done.stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait(timeout=120) == 0
    return b"".join(chunks).decode()


def test_progress_shows_on_a_terminal_and_stays_quiet_in_a_pipe(tmp_path):
    env = {**os.environ, "BHXH_DATA_DIR": str(tmp_path)}
    argv = ["demo-traffic", "--db", str(tmp_path / "demo.db"), "--days", "2", "--per-day", "3", "--fast"]
    assert "bhxh: demo traffic: day 1/2 (50%)" in _stderr_of(argv, env, terminal=True)
    assert "bhxh:" not in _stderr_of(argv, env, terminal=False)


def test_index_encoding_reports_chunks_and_gives_the_same_vectors(tmp_path, monkeypatch, capsys, progress_mode):
    import numpy as np

    from retrieval.dense import DenseEncoder
    from retrieval.index import HybridIndex
    from retrieval.normalize import normalize_document

    model = os.environ.get("BHXH_MODEL_DIR", "")
    if not model or not Path(model).is_dir():
        pytest.skip("BHXH_MODEL_DIR (the built e5 model) is not available")
    encoder = DenseEncoder(model)
    texts = [q.question for q in list(engine().kb.entries.values())[:10]]
    monkeypatch.setattr(progress_mode, "CHUNK", 4)
    progress_mode.configure("always")
    index = HybridIndex([(str(n), t) for n, t in enumerate(texts)], encoder=encoder, cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert "bhxh: index: texts encoded or read from the cache: 10/10 (100%) in " in err
    whole = encoder.encode_passages([normalize_document(t) for t in texts])
    assert index.vectors is not None and np.allclose(index.vectors, whole, atol=1e-5)
    HybridIndex([(str(n), t) for n, t in enumerate(texts)], encoder=encoder, cache_dir=tmp_path)  # all cached now
    assert "10/10 (100%)" in capsys.readouterr().err


def test_a_stage_that_cannot_count_says_it_is_still_working(capsys, progress_mode):
    import time

    progress_mode.configure("always")
    with progress_mode.stage("starting", "the model", heartbeat=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bhxh: starting: the model …" and lines[-1].startswith("bhxh: starting: done in ")
    assert any(re.fullmatch(r"bhxh: starting: still working \(\d+ s\)", line) for line in lines[1:-1])
    progress_mode.configure("never")
    with progress_mode.stage("quiet", heartbeat=0.05):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""
