"""``steadyscale.client``: a typed Python client of the HTTP API ``steadyscale run`` serves
(httpx). Every answer is checked against the API's own models; every refusal is an
``ApiError`` with the server's one-line ``detail``; a daemon that does not answer is
``ApiUnreachable``.

    with Client("http://127.0.0.1:8470", token=os.environ["STEADYSCALE_API_TOKEN"]) as api:
        api.set_entry("render-farm", [DemandItem(bundle={"CPU": 4}, count=10)])
        for node in api.nodes():
            ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from steadyscale.api.models import (
    DemandAnswer,
    DemandBody,
    DrainAnswer,
    EventOut,
    HistoryAnswer,
    NodeOut,
    NodesAnswer,
    UsageAnswer,
    UsageBody,
    UsageReportIn,
)
from steadyscale.core.resources import DemandItem
from steadyscale.errors import SteadyscaleError
from steadyscale.ops.status_report import StatusReport

__all__ = [
    "ApiError",
    "ApiUnreachable",
    "Client",
    "DemandItem",
    "UsageReportIn",
]

CLUSTER_HEADER = "X-Steadyscale-Cluster"  # (api.app.CLUSTER_HEADER; the app is not imported)
_M = TypeVar("_M", bound=BaseModel)


class ApiError(SteadyscaleError):
    """The API refused a request (``status``: its HTTP status, ``detail``: why)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"the API answered {status}: {detail}")


class ApiUnreachable(ApiError):  # noqa: N818 - the name says what happened
    """No daemon answered at the address (none runs, or it listens elsewhere)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"no answer from {url} ({reason})")


class Client:
    """The API of one daemon at ``url`` (e.g. ``http://127.0.0.1:8470``)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self.cluster_name: str | None = None  # as the last answer named it

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ reads

    def status(self) -> StatusReport:
        """What ``steadyscale status --json`` prints."""
        return self._call("GET", "/api/v1/status", StatusReport)

    def demand(self) -> DemandAnswer:
        return self._call("GET", "/api/v1/demand", DemandAnswer)

    def nodes(
        self, *, finished: bool = False, finished_within: float | None = None
    ) -> list[NodeOut]:
        """The live nodes; with ``finished`` the finished ones too (of those, with
        ``finished_within``, only the ones active in that many seconds)."""
        params: dict[str, Any] = {"finished": "true"} if finished else {}
        if finished_within is not None:
            params["finished_within"] = finished_within
        return self._call("GET", "/api/v1/nodes", NodesAnswer, params=params or None).nodes

    def history(self, minutes: int = 60) -> HistoryAnswer:
        return self._call("GET", "/api/v1/history", HistoryAnswer, params={"minutes": minutes})

    def events(
        self, *, after: int | None = None, seconds: float | None = None
    ) -> Iterator[EventOut]:
        """The event stream (server-sent events), for ``seconds`` or until closed."""
        params: dict[str, Any] = {}
        if after is not None:
            params["after"] = after
        if seconds is not None:
            params["seconds"] = seconds
        try:
            with self._http.stream("GET", "/api/v1/events", params=params, timeout=None) as answer:
                self._check(answer, stream=True)
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        yield EventOut.model_validate_json(line.removeprefix("data: "))
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.url, str(exc) or type(exc).__name__) from None

    # ------------------------------------------------------------------ changes

    def set_demand(
        self, demand: Sequence[DemandItem], *, idempotency_key: str | None = None
    ) -> DemandAnswer:
        """Replace the whole demand (its one entry ``default``), as ``steadyscale request``."""
        return self._change(
            "PUT", "/api/v1/demand", DemandBody(demand=list(demand)), DemandAnswer, idempotency_key
        )

    def set_entry(
        self, name: str, demand: Sequence[DemandItem], *, idempotency_key: str | None = None
    ) -> DemandAnswer:
        """Set this workload's named entry of the demand; the other entries stay."""
        return self._change(
            "PUT",
            f"/api/v1/demand/entries/{name}",
            DemandBody(demand=list(demand)),
            DemandAnswer,
            idempotency_key,
        )

    def delete_entry(self, name: str, *, idempotency_key: str | None = None) -> DemandAnswer:
        return self._change(
            "DELETE", f"/api/v1/demand/entries/{name}", None, DemandAnswer, idempotency_key
        )

    def report_usage(
        self, reports: Sequence[UsageReportIn], *, idempotency_key: str | None = None
    ) -> int:
        """Report what runs on nodes; how many reports were accepted (all or none)."""
        body = UsageBody(reports=list(reports))
        return self._change("POST", "/api/v1/usage", body, UsageAnswer, idempotency_key).accepted

    def drain(self, node: str, *, idempotency_key: str | None = None) -> DrainAnswer:
        """Ask that a node (node id or instance id) be drained, then terminated."""
        return self._change(
            "POST", f"/api/v1/nodes/{node}/drain", None, DrainAnswer, idempotency_key
        )

    def ack_drain(self, node: str, *, idempotency_key: str | None = None) -> DrainAnswer:
        """Let a draining node go: it is terminated at the next tick."""
        return self._change(
            "POST", f"/api/v1/nodes/{node}/drain/ack", None, DrainAnswer, idempotency_key
        )

    # ------------------------------------------------------------------ wire

    def _change(
        self, method: str, path: str, body: BaseModel | None, model: type[_M], key: str | None
    ) -> _M:
        headers = {"Idempotency-Key": key} if key else None
        content = None if body is None else body.model_dump_json()
        if content is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        return self._call(method, path, model, content=content, headers=headers)

    def _call(self, method: str, path: str, model: type[_M], **kwargs: Any) -> _M:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.url, str(exc) or type(exc).__name__) from None
        self._check(answer)
        try:
            return model.model_validate_json(answer.content)
        except ValidationError as exc:
            raise ApiError(
                answer.status_code, f"an answer this client does not understand: {exc}"
            ) from None

    def _check(self, answer: httpx.Response, *, stream: bool = False) -> None:
        self.cluster_name = answer.headers.get(CLUSTER_HEADER, self.cluster_name)
        if answer.is_success:
            return
        if stream:
            answer.read()
        try:
            detail = str(json.loads(answer.content)["detail"])
        except (ValueError, KeyError, TypeError):
            detail = answer.text[:200] or answer.reason_phrase
        raise ApiError(answer.status_code, detail)
