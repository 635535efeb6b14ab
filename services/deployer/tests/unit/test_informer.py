"""The informer's loop (``kubernetes/informer.py``) against a scripted client: list once, watch
from the list's version, resume from the last version seen when the server ends a watch (no
second list), list again on 410 Gone, back off and resume after a broken stream (not live in
between), and what the runtime saw itself merged by resourceVersion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.client import KubeError
from slipway_deployer.adapters.runtime.kubernetes.informer import Informer
from slipway_libs.retry import Backoff

Event = tuple[str, dict[str, Any]]


def deployment(service: str, version: int, *, uid: str = "u1", replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {
            "name": service,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(version),
            "labels": {"slipway.dev/service": service},
        },
        "spec": {"replicas": replicas},
    }


class ScriptedClient:
    """``list_versioned`` answers the next listing; each ``watch`` plays the next session (its
    events, then the end the server gives it, or an error), then waits for ever."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], sessions: list[Any]) -> None:
        self.lists = lists
        self.sessions = sessions
        self.calls: list[tuple[str, str | None]] = []  # ("list", None) / ("watch", version)

    async def list_versioned(self, kind: str, **_: Any) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(("list", None))
        return self.lists.pop(0)

    async def watch(
        self,
        kind: str,
        namespace: str | None,
        *,
        resource_version: str | None = None,
        opened: Callable[[], None] | None = None,
        **_: Any,
    ) -> AsyncIterator[Event]:
        self.calls.append(("watch", resource_version))
        if not self.sessions:
            await asyncio.Event().wait()
        session = self.sessions.pop(0)
        if isinstance(session, Exception):
            raise session
        if opened is not None:
            opened()
        for event in session:
            yield event


def informer(client: ScriptedClient) -> Informer:
    fake: Any = client  # the two calls the informer makes of a KubeClient
    return Informer(fake, "Deployment", labels="managed", backoff=Backoff(0.0, 0.0))


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(10_000):  # yields only: no time passes in these tests
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def test_it_lists_once_then_watches_and_resumes_from_the_last_version_seen() -> None:
    client = ScriptedClient(
        lists=[([deployment("a", 5)], "10")],
        sessions=[
            [
                ("MODIFIED", deployment("a", 11)),
                ("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
            ],
            [("ADDED", deployment("b", 16))],
        ],
    )
    watched = informer(client)
    try:
        assert await watched.ready(timeout_s=5)
        await until(lambda: watched.get("b") is not None, "b seen")

        assert client.calls[:3] == [("list", None), ("watch", "10"), ("watch", "15")]
        assert client.calls.count(("list", None)) == 1
        found = watched.get("a")
        assert found is not None and found["metadata"]["resourceVersion"] == "11"
    finally:
        await watched.close()


async def test_410_gone_lists_again_and_watches_from_the_new_list() -> None:
    gone = KubeError(410, "Expired", "too old resource version")
    client = ScriptedClient(
        lists=[([deployment("a", 5)], "10"), ([deployment("a", 30, replicas=0)], "31")],
        sessions=[gone],
    )
    watched = informer(client)
    try:
        await watched.ready(timeout_s=5)
        await until(lambda: len(client.calls) >= 4, "the watch after the second list")

        assert client.calls[:4] == [
            ("list", None),
            ("watch", "10"),
            ("list", None),
            ("watch", "31"),
        ]
        found = watched.get("a")
        assert found is not None and found["spec"]["replicas"] == 0
    finally:
        await watched.close()


async def test_a_broken_stream_is_not_live_then_resumed_from_its_version_without_a_list() -> None:
    broken = RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, "the stream broke")
    client = ScriptedClient(
        lists=[([deployment("a", 5)], "10")],
        sessions=[[("MODIFIED", deployment("a", 12))], broken, broken, []],
    )
    watched = informer(client)
    try:
        await watched.ready(timeout_s=5)
        await until(lambda: len(client.calls) >= 6, "the watch resumed after the failures")

        assert client.calls[:6] == [
            ("list", None),
            ("watch", "10"),
            ("watch", "12"),  # the server ended the first: resumed
            ("watch", "12"),  # broken: resumed after a backoff, from the same version
            ("watch", "12"),
            ("watch", "12"),  # the empty session ended too
        ]
        await until(lambda: watched.live, "live again once a watch opened")
    finally:
        await watched.close()


async def test_the_runtimes_own_newer_object_wins_and_a_deleted_one_stays_hidden() -> None:
    client = ScriptedClient(lists=[([deployment("a", 5)], "10")], sessions=[])
    watched = informer(client)
    try:
        await watched.ready(timeout_s=5)
        watched.offer(deployment("a", 20, replicas=0))
        watched._apply("MODIFIED", deployment("a", 18))  # an older event still in flight
        found = watched.get("a")
        assert found is not None and found["spec"]["replicas"] == 0

        watched.forget("a")
        watched._apply("MODIFIED", deployment("a", 21))  # the deleted object, late
        assert watched.get("a") is None
        watched._apply("ADDED", deployment("a", 25, uid="u2"))  # applied again: a new object
        found = watched.get("a")
        assert found is not None and found["metadata"]["uid"] == "u2"
    finally:
        await watched.close()


class SilentClient(ScriptedClient):
    """A watch that opens and then never says a word nor ends (a connection dead silently)."""

    def __init__(self) -> None:
        super().__init__(lists=[([deployment("a", 5)], "10")], sessions=[])
        self.closed = 0

    async def watch(
        self,
        kind: str,
        namespace: str | None,
        *,
        resource_version: str | None = None,
        opened: Callable[[], None] | None = None,
        **_: Any,
    ) -> AsyncIterator[Event]:
        self.calls.append(("watch", resource_version))
        if opened is not None:
            opened()
        try:
            await asyncio.Event().wait()
            yield ("ADDED", deployment("never", 1))
        finally:
            self.closed += 1


async def test_a_silent_watch_is_closed_and_resumed_from_its_version() -> None:
    client = SilentClient()
    fake: Any = client
    watched = Informer(fake, "Deployment", labels="managed", silent_after_s=0.05)
    try:
        await watched.ready(timeout_s=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30  # a hang guard; the informer's own timer is 0.05 s
        while len(client.calls) < 3 and loop.time() < deadline:
            await asyncio.sleep(0.01)

        assert client.calls[:3] == [("list", None), ("watch", "10"), ("watch", "10")]
        assert client.closed >= 1, "the silent stream was not closed"
    finally:
        await watched.close()


def ready_when_available(found: dict[str, Any]) -> bool:
    return bool((found.get("status") or {}).get("available"))


async def test_a_rollout_waits_on_the_one_watch_and_wakes_on_its_change() -> None:
    client = ScriptedClient(lists=[([], "10")], sessions=[])
    watched = informer(client)
    try:
        await watched.ready(timeout_s=5)
        watched.offer(deployment("a", 11))  # the apply's answer
        waiting = asyncio.create_task(
            watched.wait_until("a", ready_when_available, stuck=lambda _: None)
        )
        await until(lambda: "a" in watched._waiters, "the rollout waiting")
        assert not waiting.done()

        available = deployment("a", 12) | {"status": {"available": True}}
        watched._apply("MODIFIED", available)

        assert (await waiting)["metadata"]["resourceVersion"] == "12"
        gone = asyncio.create_task(watched.wait_until("a", lambda _: False, stuck=lambda _: None))
        await until(lambda: "a" in watched._waiters, "the second wait")
        watched._apply("DELETED", available)
        try:
            await gone
        except RuntimeFailure as failure:
            assert failure.reason is FailureReason.NOT_FOUND
        else:
            raise AssertionError("a deleted Deployment's rollout did not fail")
    finally:
        await watched.close()


async def test_a_list_keeps_what_the_runtime_applied_after_the_lists_version() -> None:
    gone = KubeError(410, "Expired", "too old resource version")
    client = ScriptedClient(lists=[([], "10"), ([], "20")], sessions=[gone])
    watched = informer(client)
    watched.offer(deployment("late", 25))  # applied while the second list was in flight
    watched.offer(deployment("old", 15))  # older than the second list, which lacks it: gone
    try:
        await watched.ready(timeout_s=5)
        await until(lambda: client.calls.count(("list", None)) == 2, "the second list")
        await until(lambda: watched.get("old") is None, "the second list applied")

        assert watched.get("late") is not None
    finally:
        await watched.close()
