"""bench.ab's rounds and verdict: every variant runs in every place equally often (the place itself
can weigh ~25 %: docs/performance.md, eighth round), and the verdict is each variant's rate against
the first one's in the same round, not across rounds."""

from __future__ import annotations

import math

import pytest

from bench.ab import _args, orders, summary


def test_each_variant_takes_each_place_equally_often():
    rounds = orders(["a", "b", "c"], 6)
    assert rounds[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    for place in range(3):
        assert sorted(r[place] for r in rounds) == ["a", "a", "b", "b", "c", "c"]
    assert orders(["old", "new"], 4) == [["old", "new"], ["new", "old"], ["old", "new"], ["new", "old"]]


def test_the_verdict_compares_rates_within_rounds():
    # The machine's phase halves both in the second round: the ratio holds, the medians mislead less.
    rates = {"old": [100.0, 50.0, 100.0], "new": [120.0, 60.0, 120.0]}
    cpu = {"old": [3.0, 3.2, 3.1], "new": [2.5, 2.7, 2.6]}
    verdict = summary(rates, cpu)
    assert verdict["old"]["ratio_to_first"] == pytest.approx(1.0)
    assert verdict["new"]["ratio_to_first"] == pytest.approx(1.2)
    assert (verdict["new"]["median_rate"], verdict["new"]["median_cpu_ms"]) == (120.0, 2.6)
    # a geometric mean: 2× faster in one round and 2× slower in the other is no change
    assert summary({"a": [1.0, 1.0], "b": [2.0, 0.5]}, {"a": [1, 1], "b": [1, 1]})["b"]["ratio_to_first"] == pytest.approx(1.0)
    assert math.isnan(summary({"a": [0.0], "b": [1.0]}, {"a": [1], "b": [1]})["b"]["ratio_to_first"])


def test_variants_are_named_trees_two_or_more(tmp_path):
    args = _args(["--path", "oru", "--variant", f"a={tmp_path}", "--variant", "b=."])
    assert list(args.variants) == ["a", "b"] and args.variants["a"] == str(tmp_path) and args.concurrency == 4
    assert _args(["--path", "create", "--variant", "a=.", "--variant", "b=."]).concurrency == 16
    for bad in (["--variant", "a=."], ["--variant", "a=.", "--variant", "a=."], ["--variant", "a", "--variant", "b=."]):
        with pytest.raises(SystemExit):
            _args(["--path", "get", *bad])
