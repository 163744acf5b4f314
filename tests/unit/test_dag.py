"""The cycle check on its own: a graph is a dict, read through the callback."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from agent_pool.board.dag import find_cycle


class Graph:
    """Existing edges (task -> what it depends on), counting how often each is read."""

    def __init__(self, edges: dict[str, list[str]]) -> None:
        self.edges = edges
        self.reads: dict[str, int] = {}

    def deps_of(self, node: str) -> Iterable[str]:
        self.reads[node] = self.reads.get(node, 0) + 1
        return self.edges.get(node, [])


def test_no_dependencies_no_cycle() -> None:
    assert find_cycle("a", [], Graph({}).deps_of) is None


def test_self_loop() -> None:
    assert find_cycle("a", ["a"], Graph({}).deps_of) == ["a", "a"]


def test_direct_cycle() -> None:
    # a already depends on b; b arriving with a dependency on a closes b -> a -> b.
    graph = Graph({"a": ["b"]})
    assert find_cycle("b", ["a"], graph.deps_of) == ["b", "a", "b"]


def test_transitive_cycle() -> None:
    graph = Graph({"a": ["b"], "b": ["c"], "c": ["d"]})
    assert find_cycle("d", ["a"], graph.deps_of) == ["d", "a", "b", "c", "d"]


def test_cycle_closed_by_a_late_task_that_was_a_missing_dependency() -> None:
    # x and y were accepted while "late" did not exist (a missing dependency has no
    # edges); "late" then arrives depending on y.
    graph = Graph({"x": ["late", "other"], "y": ["x"]})
    assert find_cycle("late", ["y"], graph.deps_of) == ["late", "y", "x", "late"]


def test_missing_dependencies_alone_are_no_cycle() -> None:
    graph = Graph({"x": ["ghost"]})
    assert find_cycle("new", ["x", "phantom"], graph.deps_of) is None


def test_diamond_is_not_a_cycle() -> None:
    #     top
    #    /   \
    # left   right
    #    \   /
    #    base
    graph = Graph({"left": ["base"], "right": ["base"], "base": []})
    assert find_cycle("top", ["left", "right"], graph.deps_of) is None
    assert graph.reads["base"] == 1  # shared ancestors are visited once


def test_cycle_through_one_branch_of_a_diamond() -> None:
    graph = Graph({"left": ["base"], "right": ["base"], "base": ["new"]})
    cycle = find_cycle("new", ["left", "right"], graph.deps_of)
    assert cycle is not None
    assert cycle[0] == cycle[-1] == "new"
    assert cycle[-2] == "base"
    assert cycle[1] in {"left", "right"}
    # Every step of the reported cycle is a real edge.
    edges = {**graph.edges, "new": ["left", "right"]}
    assert all(b in edges[a] for a, b in pairwise(cycle))


def test_every_node_is_read_once_on_a_dense_graph() -> None:
    # Each layer depends on every node of the next: a naive search would read the
    # bottom layers exponentially often.
    layers = [[f"n{depth}-{i}" for i in range(4)] for depth in range(12)]
    edges = {node: layers[depth + 1] for depth in range(11) for node in layers[depth]}
    graph = Graph(edges)
    assert find_cycle("top", layers[0], graph.deps_of) is None
    assert set(graph.reads.values()) == {1}
    assert len(graph.reads) == 48


def test_a_very_deep_chain_needs_no_recursion() -> None:
    depth = 50_000
    edges = {f"t{i}": [f"t{i + 1}"] for i in range(depth)}
    edges[f"t{depth}"] = ["new"]
    cycle = find_cycle("new", ["t0"], Graph(edges).deps_of)
    assert cycle is not None
    assert len(cycle) == depth + 3
    assert cycle[:3] == ["new", "t0", "t1"]
