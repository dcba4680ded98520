"""The engine seen from another Pi: ``EnginePort`` over MQTT 5 request/response.

    >>> engine = RemoteEngine(CommandClient(link.port, link.uplink, link.topics, clock=clock))
    >>> engine.call_next("c1").number          # -> 'A001' (or raises RemoteRefused)

Answers become attribute objects with the engine's field names (``Ticket``,
``CounterState``, ``Rating`` as JSON), so a role cannot tell the difference.
A ``rejected`` answer raises :class:`RemoteRefused` with the engine's domain
``code``; no answer (broker or engine down) raises :class:`EngineUnreachable`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Protocol

from tessera.errors import DeviceError, TesseraError


class RemoteRefused(TesseraError, RuntimeError):
    """The engine refused the command (``code`` is its domain error code)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail or code)
        self.code = code


class EngineUnreachable(DeviceError):
    """No answer from the engine (``code``: ``timeout`` or the transport's error code)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"engine unreachable ({code}): {detail}")
        self.code = code


class Requester(Protocol):
    def request(self, name: str, args: dict[str, Any], *,
                timeout: float = ...) -> dict[str, Any]: ...


class RemoteEngine:
    """``tessera.roles.ports.EnginePort`` through ``tessera.mqtt.command_client.CommandClient``."""

    def __init__(self, client: Requester, *, timeout_s: float = 5.0) -> None:
        self.client = client
        self.timeout_s = timeout_s

    def _call(self, name: str, **args: Any) -> Any:
        answer = self.client.request(name, args, timeout=self.timeout_s)
        status = answer.get("status")
        code, detail = str(answer.get("code", "")), str(answer.get("detail", ""))
        if status == "done":
            result = answer.get("result") or {}
            return SimpleNamespace(**result) if isinstance(result, dict) else result
        if status == "rejected" and code not in ("timeout", "in-doubt"):
            raise RemoteRefused(code, detail)
        raise EngineUnreachable(code or "error", detail)

    def snapshot(self) -> dict[str, Any]:
        """The engine's live state (queues, counters, recent calls) for a board rebuild."""
        answer = self.client.request("snapshot", {}, timeout=self.timeout_s)
        if answer.get("status") != "done" or not isinstance(answer.get("result"), dict):
            raise EngineUnreachable(str(answer.get("code") or "error"),
                                    str(answer.get("detail", "")))
        result: dict[str, Any] = answer["result"]
        return result

    def issue(self, service: str, *, priority: str | None = None) -> Any:
        return self._call("issue-ticket", service=service, priority=priority)

    def confirm_printed(self, ticket_id: str) -> Any:
        return self._call("confirm-printed", ticket_id=ticket_id)

    def void(self, ticket_id: str, reason: str) -> Any:
        return self._call("void-ticket", ticket_id=ticket_id, reason=reason)

    def check_in(self, code: str) -> Any:
        return self._call("check-in", code=code)

    def call_next(self, counter: str) -> Any:
        return self._call("call-next", counter=counter)

    def recall(self, counter: str) -> Any:
        return self._call("recall", counter=counter)

    def no_show(self, counter: str) -> Any:
        return self._call("no-show", counter=counter)

    def done(self, counter: str) -> Any:
        return self._call("done", counter=counter)

    def transfer(self, counter: str, service: str) -> Any:
        return self._call("transfer", counter=counter, service=service)

    def open_counter(self, counter: str, staff: str | None = None) -> Any:
        return self._call("open-counter", counter=counter, staff=staff)

    def close_counter(self, counter: str) -> Any:
        return self._call("close-counter", counter=counter)

    def pause(self, counter: str) -> Any:
        return self._call("pause", counter=counter)

    def resume(self, counter: str) -> Any:
        return self._call("resume", counter=counter)

    def rate(self, counter: str, score: int) -> Any:
        return self._call("rate", counter=counter, score=score)
