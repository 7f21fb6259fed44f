"""What a RunInstances asks of the model: its ClientToken book and its admission (the
launch bucket, then capacity), on their own."""

from __future__ import annotations

import pytest

from steadyscale.ec2model.launch import ClientTokens, Launch, LaunchRefusedError, fingerprint
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import build_settings

PARAMS = {"ImageId": "ami-1", "InstanceType": "m5.large", "MinCount": 1, "MaxCount": 2}


def test_the_fingerprint_ignores_the_token_and_the_order_of_parameters() -> None:
    reordered = dict(reversed(list(PARAMS.items())))
    assert fingerprint({**PARAMS, "ClientToken": "a"}) == fingerprint({**reordered})
    assert fingerprint(PARAMS) != fingerprint({**PARAMS, "MaxCount": 3})


def test_a_repeated_token_gets_the_first_answer() -> None:
    tokens: ClientTokens[tuple[str, ...]] = ClientTokens()
    assert tokens.replay("t-1", fingerprint(PARAMS)) is None
    tokens.remember("t-1", fingerprint(PARAMS), ("i-1", "i-2"))
    assert tokens.replay("t-1", fingerprint(PARAMS)) == ("i-1", "i-2")
    assert tokens.replay("t-2", fingerprint(PARAMS)) is None


def test_a_token_reused_with_other_parameters_is_refused() -> None:
    tokens: ClientTokens[str] = ClientTokens()
    tokens.remember("t-1", fingerprint(PARAMS), "first")
    with pytest.raises(LaunchRefusedError) as refused:
        tokens.replay("t-1", fingerprint({**PARAMS, "MaxCount": 3}))
    assert (refused.value.code, refused.value.status) == ("IdempotentParameterMismatch", 400)


def test_a_launch_without_a_token_is_never_replayed() -> None:
    tokens: ClientTokens[str] = ClientTokens()
    tokens.remember(None, fingerprint(PARAMS), "first")
    assert tokens.replay(None, fingerprint(PARAMS)) is None


def _launch(min_count: int, max_count: int) -> Launch:
    return Launch(
        instance_type="m5.large",
        availability_zone="us-east-1a",
        market="on-demand",
        min_count=min_count,
        max_count=max_count,
    )


def test_the_launch_bucket_caps_max_count_and_throttles_below_min_count() -> None:
    bucket = {"RunInstances": {"capacity": 4, "refill_per_second": 0.0}}
    settings = build_settings(
        profile="none", overrides={"throttling": {"enabled": True, "resource_buckets": bucket}}
    )
    model = RegionModel(settings, "us-east-1")
    assert model.admit_launch(_launch(1, 10), 0.0) == 4
    model.register_launch(_launch(1, 10), ["i-1", "i-2", "i-3"], 0.0)  # charges the bucket
    with pytest.raises(LaunchRefusedError) as refused:
        model.admit_launch(_launch(2, 2), 0.0)
    assert (refused.value.code, refused.value.status) == ("RequestLimitExceeded", 503)
    assert model.admit_launch(_launch(1, 2), 0.0) == 1
