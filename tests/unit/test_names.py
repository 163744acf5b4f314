from __future__ import annotations

import pytest

from agent_pool.errors import InvalidNameError, UsageError
from agent_pool.names import check_expert_name, check_message_id, check_name

BAD_NAMES = [
    "",
    "Backend",
    "back end",
    "a/b",
    "..",
    "../etc",
    ".hidden",
    "-leading-dash",
    "_leading",
    "x" * 65,
    "tab\tname",
    "nul\x00",
    "ünïcode",
]


@pytest.mark.parametrize("name", ["a", "backend", "data-pipeline", "infra_2", "0x", "a" * 64])
def test_valid_names_pass(name: str) -> None:
    assert check_expert_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names_are_refused_with_the_name_in_the_message(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        check_name(name, "expert name")
    assert repr(name) in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["architect", "researcher", "concierge", "auto", "daemon"])
def test_reserved_names_cannot_be_experts(name: str) -> None:
    assert check_name(name) == name
    with pytest.raises(InvalidNameError, match="reserved"):
        check_expert_name(name)


@pytest.mark.parametrize("value", ["t-0001", "20261124-101500-123456-3fa9c1", "A.b_c-9", "x" * 128])
def test_valid_message_ids(value: str) -> None:
    assert check_message_id(value) == value


@pytest.mark.parametrize("value", ["", "../x", "/etc/passwd", ".hidden", "a b", "a/b", "x" * 129])
def test_invalid_message_ids(value: str) -> None:
    with pytest.raises(UsageError):
        check_message_id(value)
