"""EC2's rules are written once and both backends follow them: the emulator (through the
boto3 provider) and the in-memory backend draw the same fate for the same calls, refuse a
reused ClientToken alike, and report a protected instance alike."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from steadyscale.emulator import Emulator, build_settings
from steadyscale.errors import CloudError, LaunchRejected
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import ClientOptions, CloudProvider, LaunchSpec
from steadyscale.retries.clock import FakeClock
from tests.providers.emulated import emulated_provider

FAULTS = {
    "server_error_probability": 0.3,
    "lost_response_probability": 0.15,
    "timeout_probability": 0.1,
    "timeout_seconds": 0,
}


def _spec(count: int, token: str = "ss-r-1", **config: Any) -> LaunchSpec:
    return LaunchSpec(
        request_id=token.removeprefix("ss-"),
        client_token=token,
        node_type="cpu",
        count=count,
        node_config={"InstanceType": "m5.large", "ImageId": "ami-12345678", **config},
    )


@pytest.fixture
def backends(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Emulator, EC2Provider, MemoryProvider]]:
    """The emulator and a boto3 provider on it, and the in-memory backend, on one profile
    and seed (``request.param``: settings overrides), each on its own fake clock."""
    settings = build_settings(profile="none", overrides={"seed": 5, **request.param})
    clock = FakeClock(100.0)
    memory = MemoryProvider(
        cluster_name="c",
        clock=FakeClock(100.0),
        settings=settings,
        options=ClientOptions(max_attempts=1),
    )
    with Emulator(settings, clock=clock) as emu:
        boto = emulated_provider(emu.endpoint_url, clock)
        yield emu, boto, memory


def _fates(provider: CloudProvider) -> None:
    for _ in range(40):
        with contextlib.suppress(CloudError):
            provider.list_tagged("role", "worker")


@pytest.mark.parametrize("backends", [{"errors": FAULTS}], indirect=True)
def test_both_backends_draw_the_same_fate_for_the_same_calls(
    backends: tuple[Emulator, EC2Provider, MemoryProvider],
) -> None:
    emu, boto, memory = backends
    _fates(boto)
    _fates(memory)

    def log(records: list[Any]) -> list[tuple[str, str, int, str | None]]:
        return [(r.action, r.outcome, r.status, r.fault) for r in records]

    seen = log(memory.calls.records())
    assert log(emu.calls.records()) == seen
    assert {outcome for _, outcome, _, _ in seen} == {
        "ok",
        "InternalError",
        "Unavailable",
        "timeout",
    }


@pytest.mark.parametrize("backends", [{}], indirect=True)
def test_both_backends_refuse_a_token_reused_with_other_parameters_alike(
    backends: tuple[Emulator, EC2Provider, MemoryProvider],
) -> None:
    emu, boto, memory = backends
    refusals = []
    for provider in (boto, memory):
        first = provider.launch(_spec(2))
        assert provider.launch(_spec(2)) == first  # a retry gets the first answer
        with pytest.raises(LaunchRejected) as refused:
            provider.launch(_spec(3))
        refusals.append((refused.value.code, refused.value.message))
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == "IdempotentParameterMismatch"


@pytest.mark.parametrize("backends", [{}], indirect=True)
def test_both_backends_terminate_around_a_protected_instance_alike(
    backends: tuple[Emulator, EC2Provider, MemoryProvider],
) -> None:
    emu, boto, memory = backends
    shapes = []
    for provider in (boto, memory):
        free = [i.instance_id for i in provider.launch(_spec(2, "ss-a")).instances]
        [kept] = provider.launch(_spec(1, "ss-b", DisableApiTermination=True)).instances
        result = provider.terminate([free[0], kept.instance_id, free[1], "i-0123456789abcdef0"])
        assert set(result.states) == set(free)
        assert result.not_found == ("i-0123456789abcdef0",)
        [(refused_id, why)] = result.refused.items()
        shapes.append(why.replace(refused_id, "ID"))
        assert refused_id == kept.instance_id
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("backends", [{}], indirect=True)
def test_both_backends_say_alike_why_an_instance_went_away(
    backends: tuple[Emulator, EC2Provider, MemoryProvider],
) -> None:
    emu, boto, memory = backends
    reasons = []
    for provider, interrupt in ((boto, emu.interrupt), (memory, memory.interrupt)):
        spot = {"InstanceMarketOptions": {"MarketType": "spot"}}
        [reclaimed] = provider.launch(_spec(1, "ss-spot", **spot)).instances
        [ended] = provider.launch(_spec(1, "ss-ours")).instances
        interrupt([reclaimed.instance_id])
        provider.terminate([ended.instance_id])
        shown = {
            i.instance_id: (i.state, i.state_reason)
            for i in provider.describe([reclaimed.instance_id, ended.instance_id])
        }
        reasons.append((shown[reclaimed.instance_id], shown[ended.instance_id]))
    assert reasons[0] == reasons[1]
    assert [reason for _, reason in reasons[0]] == [
        "Server.SpotInstanceTermination",
        "Client.UserInitiatedShutdown",
    ]
