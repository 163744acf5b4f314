"""Dependency graph checks, pure: the graph is read through a callback, never stored.

Edges point from a task to what it depends on. The board holds a DAG at all times,
so a new task can only close a cycle that runs through itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def find_cycle(
    new_id: str, new_deps: Iterable[str], deps_of: Callable[[str], Iterable[str]]
) -> list[str] | None:
    """The cycle that adding `new_id -> new_deps` would close, or None.

    The cycle reads along the edges and ends where it starts, e.g. ["b", "a", "b"]
    (b depends on a, which already depends on b). Iterative depth-first search: deep
    chains cannot hit the recursion limit, and `deps_of` is asked once per node.
    """
    # Maps each reached node to the node it was reached from; doubles as "visited".
    came_from: dict[str, str] = {}
    stack: list[str] = []
    for dep in new_deps:
        if dep == new_id:
            return [new_id, new_id]
        if dep not in came_from:
            came_from[dep] = new_id
            stack.append(dep)
    while stack:
        node = stack.pop()
        for dep in deps_of(node):
            if dep == new_id:
                return _path_back(came_from, node, new_id)
            if dep not in came_from:
                came_from[dep] = node
                stack.append(dep)
    return None


def _path_back(came_from: dict[str, str], last: str, start: str) -> list[str]:
    path = [last]
    while path[-1] != start:
        path.append(came_from[path[-1]])
    path.reverse()
    path.append(start)
    return path
