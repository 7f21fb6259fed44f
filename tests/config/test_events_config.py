"""The ``events`` block: one queue, SQS's bounds, a full listing below the visibility
timeout; each mistake one line naming the key. Without the block nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.app.loading import parse_cluster_config
from steadyscale.config import parse_config
from steadyscale.errors import ConfigError
from tests.config.test_config import _base


def _with(events: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**_base(), "events": events, **top}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_and_no_block_means_no_events() -> None:
    assert parse_config(_base()).events is None
    events = parse_config(_with({"queue_name": "steadyscale-events"})).events
    assert events is not None
    assert (events.wait_seconds, events.max_messages) == (20, 10)
    assert events.full_listing_interval_seconds == 300
    assert events.max_rebalance_replacements == 1


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ({}, "events: give exactly one of queue_url and queue_name"),
        (
            {"queue_name": "a", "queue_url": "https://sqs.us-east-1.amazonaws.com/1/a"},
            "events: give exactly one of queue_url and queue_name",
        ),
        ({"queue_name": "no spaces"}, "events.queue_name: "),
        ({"queue_url": "sqs://x"}, "events.queue_url: "),
        ({"queue_name": "q", "wait_seconds": 21}, "events.wait_seconds: "),
        ({"queue_name": "q", "max_messages": 11}, "events.max_messages: "),
        ({"queue_name": "q", "max_rebalance_replacements": -1}, "events.max_rebalance"),
        ({"queue_name": "q", "batch": 3}, "events.batch: unknown key"),
    ],
)
def test_a_bad_events_block_is_one_line_naming_the_key(
    events: dict[str, Any], expected: str
) -> None:
    assert _error(_with(events)).startswith(expected)


def test_the_full_listing_must_run_within_the_visibility_timeout() -> None:
    data = _with(
        {"queue_name": "q", "full_listing_interval_seconds": 900}, visibility_timeout_seconds=600
    )
    assert "events.full_listing_interval_seconds (900) must be below" in _error(data)
