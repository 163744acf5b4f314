"""Hypothesis settings shared by the fuzzers: a bounded budget, reproducible in CI.

Kept out of a global profile so the unit tests' own hypothesis settings are untouched.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# In CI every run tries the same examples, so a red build is never a fluke of the seed.
IN_CI = bool(os.environ.get("CI"))


def fuzz_settings(max_examples: int, *, shared_fixture: bool = False) -> settings:
    """`max_examples` runs with no per-example deadline (loaded CI machines are slow).

    `shared_fixture` allows a function-scoped fixture (a server, a daemon) to serve all
    of a test's examples; each example then leaves it in a state the next can use.
    """
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if shared_fixture:
        checks.append(HealthCheck.function_scoped_fixture)
    chosen = settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=IN_CI,
        suppress_health_check=checks,
    )
    # In CI nothing is replayed from (or written to) a local example database.
    return settings(chosen, database=None) if IN_CI else chosen
