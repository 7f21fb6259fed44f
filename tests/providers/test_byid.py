"""The helpers every backend answers the protocol with: chunked by-id calls, and terminate,
which goes one by one through a chunk EC2 refused as a whole."""

from __future__ import annotations

import pytest

from steadyscale.errors import LaunchRejected
from steadyscale.providers.byid import call_in_chunks, terminate_in_chunks

PROTECTED = "i-p"
UNKNOWN = "i-u"


class FakeTerminate:
    """TerminateInstances as EC2 answers it: one protected id fails the whole call; ids it
    does not know are dropped (as ``call_dropping_unknown`` reports them)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, chosen: list[str]) -> tuple[dict[str, str], list[str]]:
        self.calls.append(chosen)
        if PROTECTED in chosen:
            raise LaunchRejected("OperationNotPermitted", f"The instance '{PROTECTED}' ...")
        known = [i for i in chosen if i != UNKNOWN]
        return dict.fromkeys(known, "shutting-down"), [i for i in chosen if i == UNKNOWN]


def test_a_protected_instance_does_not_hold_back_the_others() -> None:
    terminate = FakeTerminate()
    result = terminate_in_chunks(terminate, ["i-1", PROTECTED, UNKNOWN, "i-2"], chunk_size=10)
    assert result.states == {"i-1": "shutting-down", "i-2": "shutting-down"}
    assert result.not_found == (UNKNOWN,)
    assert result.refused == {PROTECTED: f"OperationNotPermitted: The instance '{PROTECTED}' ..."}
    # One call for the chunk, then one per id once it was refused.
    assert terminate.calls[0] == ["i-1", PROTECTED, UNKNOWN, "i-2"]
    assert terminate.calls[1:] == [["i-1"], [PROTECTED], [UNKNOWN], ["i-2"]]


def test_only_the_refused_chunk_goes_one_by_one() -> None:
    terminate = FakeTerminate()
    ids = ["i-1", "i-2", PROTECTED, "i-3", "i-1"]  # a repeated id is sent once
    result = terminate_in_chunks(terminate, ids, chunk_size=2)
    assert terminate.calls == [["i-1", "i-2"], [PROTECTED, "i-3"], [PROTECTED], ["i-3"]]
    assert set(result.states) == {"i-1", "i-2", "i-3"} and set(result.refused) == {PROTECTED}


def test_other_by_id_calls_raise_a_refusal() -> None:
    with pytest.raises(LaunchRejected):
        call_in_chunks(FakeTerminate(), ["i-1", PROTECTED], chunk_size=10)
    result = call_in_chunks(FakeTerminate(), ["i-1", UNKNOWN], chunk_size=1)
    assert (result.states, result.not_found, dict(result.refused)) == (
        {"i-1": "shutting-down"},
        (UNKNOWN,),
        {},
    )
