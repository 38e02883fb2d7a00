"""Shared answers as JSON: serialised once per tick, marked when older than their tick."""

from __future__ import annotations

import json

from govpulse.dashboard.board import Answer, JsonTexts, aged_freshness


def test_a_stale_answer_says_so_with_its_age_and_a_fresh_one_is_untouched() -> None:
    value = {"events": 3, "province": "10"}
    assert json.loads(Answer.of(value, 0.5, 2.0).json()) == value
    stale = json.loads(Answer.of(value, 3.04, 2.0).json())
    assert stale == {**value, "stale": True, "age_seconds": 3.0}


def test_one_answer_is_serialised_once_however_many_screens_get_it() -> None:
    texts = JsonTexts(limit=2)
    value = {"ministries": ["ทดสอบ"]}
    first = texts(value)
    assert texts(value) is first and json.loads(first) == value  # Thai kept as text
    texts({"a": 1})
    texts({"b": 2})  # past the limit: cleared, still right
    assert texts(value) == first


def test_a_stale_data_age_grows_by_the_age_of_the_answer() -> None:
    value = {
        "data_age_seconds": 1.2,
        "seconds_since_last_insert": 0.4,
        "data_age_by_type": {"complaint": 2.0},
        "fresh": True,
    }
    aged = aged_freshness(value, 29.5, threshold=30.0)
    assert aged["data_age_seconds"] == 30.7 and aged["fresh"] is False
    assert aged["seconds_since_last_insert"] == 29.9
    assert aged["data_age_by_type"] == {"complaint": 31.5}
    assert aged["stale"] is True and aged["age_seconds"] == 29.5
