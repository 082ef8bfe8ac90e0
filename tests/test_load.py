"""A short run of the load benchmark in `make test`: the real server under concurrent web, Telegram
and Zalo clients, with no HTTP error, every acknowledged question logged and every webhook chat answered.
The long run (60 s, 32 clients) is `make bench`."""

from __future__ import annotations

import re

from benchmarks import load


def test_a_short_burst_loses_nothing(encoder, capsys) -> None:  # `encoder`: skips when the model is not built
    assert load.main(["--seconds", "6", "--clients", "12"]) == 0
    out = capsys.readouterr().out
    assert "(lost: 0)" in out
    answered = int(re.search(r"answered during the run: (\d+)", out).group(1))
    assert answered > 0
    batched = int(re.search(r"encoder: [\w-]+; (\d+) queries in \d+ forward passes", out).group(1))
    assert batched > 0  # /healthz reports the encoder's work, and the questions went through it
    print(out)


def test_distinct_workload_never_repeats_a_text() -> None:
    texts = load.questions(distinct=True)
    assert len(set(texts)) == len(texts) > 20 * len(load.questions(distinct=False))
