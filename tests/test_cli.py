"""The `bhxh` command line: the interactive `ask` loop reads picks like every channel."""

from __future__ import annotations

import builtins
from collections.abc import Iterator

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
