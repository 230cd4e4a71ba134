"""The grammar of profile keys, built and taken apart in one place."""

from __future__ import annotations

import pytest

from framescope._keys import (
    check_name,
    join_key,
    leaf_name,
    replica_index,
    replica_key,
    without_prefix,
)


def test_keys_are_joined_and_taken_apart_the_same_way() -> None:
    key = join_key("Main", "Inner", "Resize")
    assert key == "Main__Inner__Resize"
    assert join_key("", "Main__Detect") == "Main__Detect"  # no box prefix
    assert without_prefix(key, "Main") == "Inner__Resize"
    assert without_prefix(key, "Other") == key
    assert leaf_name(key) == "Resize"
    replica = replica_key("Main__Infer", 12)
    assert replica == "Main__Infer#12"
    assert replica_index(replica) == 12
    assert replica_index("Main__Infer") is None
    assert replica_index("Main__Infer#x") is None
    assert replica_index("#3") is None


@pytest.mark.parametrize(
    ("name", "error"), [("", ValueError), ("a__b", ValueError), (3, TypeError)]
)
def test_a_name_that_cannot_be_a_key_part_is_refused(name: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="name"):
        check_name(name, "name")
