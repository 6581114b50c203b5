"""The graph benchmark's harness on a tiny graph: it runs end to end, both engines and the
baseline agree on every answer (the harness raises otherwise), and the table it reports
holds every question for every answerer. Nothing here is timed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "butterflyfx_bench_graph_run", Path(__file__).with_name("run.py")
)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness  # dataclasses look their module up by name
_spec.loader.exec_module(harness)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    sizes = harness.Sizes(nodes=300, relationships=900, queries=12, seed=3)
    return harness.run(sizes, tmp_path_factory.mktemp("bench-graph"))


def test_the_graph_is_written_through_the_store_and_timed(result):
    generation = result["generation"]
    assert generation is not None
    assert generation["generation s"] >= generation["put_relationships s"] > 0


def test_every_question_is_measured_for_both_engines_and_the_baseline(result):
    asked = {(m["question"], m["answerer"]) for m in result["measures"]}
    assert asked == {
        (question, answerer)
        for question in harness.INPUTS
        for answerer in ("graph.sql", "graph.memory", "baseline")
    }
    assert all(m["count"] == 12 and m["p99 ms"] >= m["p50 ms"] > 0 for m in result["measures"])
    assert result["table"].count("\n") == len(harness.INPUTS) + 1


def test_a_baseline_answering_differently_stops_the_run():
    with pytest.raises(AssertionError, match="the baseline with"):
        harness.agree("path by hops, random pairs", (1, 2), None, 3, "graph.sql")
