from __future__ import annotations

import datetime

import pytest

from framescope.timepiece import local_dt, local_now, panorama_timestamp_to_datetime


def test_local_now_is_aware_and_current() -> None:
    now = local_now()
    assert now.tzinfo is not None
    utc_now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((utc_now - now).total_seconds()) < 60
    assert now.utcoffset() == datetime.datetime.now().astimezone().utcoffset()


def test_local_dt_makes_naive_local_and_converts_aware() -> None:
    naive = datetime.datetime(2024, 6, 1, 12, 0)
    aware = local_dt(naive)
    assert aware.tzinfo is not None
    assert aware.replace(tzinfo=None) == naive
    utc = datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
    converted = local_dt(utc)
    assert converted == utc
    assert converted.utcoffset() == utc.astimezone().utcoffset()
    with pytest.raises(TypeError, match="dt must be a datetime"):
        local_dt("2024-06-01")  # type: ignore[arg-type]


def test_panorama_timestamp() -> None:
    dt = panorama_timestamp_to_datetime((1_700_000_000, 250_000))
    assert dt == datetime.datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=datetime.timezone.utc)
    with pytest.raises(TypeError, match="panorama_ts must be a"):
        panorama_timestamp_to_datetime(5)  # type: ignore[arg-type]
