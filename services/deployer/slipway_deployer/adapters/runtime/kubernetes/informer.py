"""One watch of a kind across a cluster (the objects Slipway manages, by label): what is running
kept in memory by service id, so that reading a running service's state costs the API server
nothing (the monitor asks every few seconds; a GET and a LIST per service each time was ~54
requests per service a minute at rest).

Invariants:
- One LIST, then one WATCH from the list's resourceVersion, with bookmarks (a quiet watch still
  moves its version on). A watch the server ends (its ``timeoutSeconds``) is resumed from the
  last version seen, with no LIST; ``410 Gone`` (a version too old for the server) lists again;
  a broken connection or a refusal is retried with a backoff, from the last version. A watch
  silent for ``silent_after_s`` (no event, no bookmark: a connection that died without a word)
  is closed and resumed the same way.
- ``live`` only while a watch is open (or the list just answered): an object read while it is
  not live may be stale, and the runtime says so (``CLUSTER_UNREACHABLE``) instead of guessing.
- What the runtime saw itself (``offer``: a rollout's last object) is kept when it is newer than
  what the watch delivered, so a state read right after an apply or a stop is never older than
  the operation's own outcome. resourceVersions are compared as integers (etcd's revisions);
  one that is not an integer is taken as newer.
- ``wait_until`` wakes on every change of the service's object (and on every list): a rollout
  watched through the one watch rather than a watch of its own.
- A list keeps what the runtime offered after the list's version (an apply answered while the
  list was in flight), so a rollout waiting on it never sees it vanish.
- ``forget`` (the runtime deleted the service) hides that object (by uid) until the watch says
  it is gone: an event about it still in flight does not bring it back; a new object (another
  uid) is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient, KubeError
from slipway_deployer.adapters.runtime.kubernetes.names import LABEL_SERVICE, Manifest
from slipway_libs.retry import Backoff

log = structlog.get_logger(__name__)


class Informer:
    def __init__(
        self,
        client: KubeClient,
        kind: str,
        *,
        labels: str,
        watch_timeout_s: float = 300.0,
        silent_after_s: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._kind = kind
        self._labels = labels
        self._watch_timeout_s = watch_timeout_s
        # the server sends a bookmark about once a minute and ends the watch at its timeout
        self._silent_after_s = silent_after_s or watch_timeout_s + 60.0
        self._backoff = backoff or Backoff(0.5, 30.0)
        self._objects: dict[str, Manifest] = {}  # service id -> the object
        self._hidden: set[str] = set()  # uids the runtime deleted, until the watch agrees
        self._version: str | None = None  # None: list first
        self._live = asyncio.Event()
        self._tried = asyncio.Event()  # the first list answered or failed
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Event] = {}  # service id -> woken on its next change
        self.lists = 0  # how many times it listed (tests and logs)

    @property
    def live(self) -> bool:
        return self._live.is_set()

    async def ready(self, timeout_s: float) -> bool:
        """Started (once), and live: the first call waits for the first list (up to
        ``timeout_s``); later calls never wait (a cluster that went away answers False now)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self._kind}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._tried.wait()
        return self.live

    def get(self, service_id: str) -> Manifest | None:
        return self._objects.get(service_id)

    async def wait_until(
        self,
        service_id: str,
        done: Callable[[Manifest], bool],
        *,
        stuck: Callable[[Manifest], str | None],
    ) -> Manifest:
        """The service's object once ``done(object)``; NOT_FOUND when it is gone, TIMEOUT when
        ``stuck`` says why it will not get there. The caller bounds it in time."""
        while True:
            found = self._objects.get(service_id)
            if found is None:
                message = f"{self._kind} of service {service_id} was deleted"
                raise RuntimeFailure(FailureReason.NOT_FOUND, message)
            if done(found):
                return found
            if why := stuck(found):
                name = found["metadata"].get("name")
                raise RuntimeFailure(FailureReason.TIMEOUT, f"{name}: {why}")
            await self._waiters.setdefault(service_id, asyncio.Event()).wait()

    def offer(self, found: Manifest) -> None:
        """An object the runtime got itself (an apply's answer, a watched rollout's end)."""
        service_id = _service_of(found)
        if service_id is None:
            return
        known = self._objects.get(service_id)
        if known is None or _newer(found, known):
            self._hidden.discard(_uid(found))
            self._objects[service_id] = found
            self._wake(service_id)

    def forget(self, service_id: str) -> None:
        """The runtime deleted the service's object: gone now, whatever the watch still says."""
        known = self._objects.pop(service_id, None)
        if known is not None:
            self._hidden.add(_uid(known))
        self._wake(service_id)

    def forget_namespace(self, namespace: str) -> None:
        """Every object of a namespace the runtime deleted."""
        for service_id, found in list(self._objects.items()):
            if found["metadata"].get("namespace") == namespace:
                self.forget(service_id)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._live.clear()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._version is None:
                    await self._list()
                await self._watch()  # returns when the server ends it: resumed from the version
                failures = 0
                continue
            except KubeError as error:
                if error.status == 410:  # the version is too old now: list again
                    log.info("informer.expired", kind=self._kind)
                    self._version = None
                    continue
                problem = error.message
            except RuntimeFailure as failure:  # unreachable, credentials refused
                problem = failure.message
            self._tried.set()  # the first list failed: ``ready`` answers now
            failures += 1
            self._live.clear()
            delay = self._backoff.delay(failures)
            log.warning("informer.broken", kind=self._kind, error=problem, retry_in_s=delay)
            await asyncio.sleep(delay)

    async def _list(self) -> None:
        items, version = await self._client.list_versioned(self._kind, labels=self._labels)
        self.lists += 1
        listed = {sid: item for item in items if (sid := _service_of(item)) is not None}
        for sid, known in self._objects.items():  # offered after the list was answered
            if sid not in listed and _after(known, version):
                listed[sid] = known
        self._objects = listed
        self._hidden.clear()
        for waiting in list(self._waiters):
            self._wake(waiting)
        self._version = version
        self._live.set()
        self._tried.set()
        log.info("informer.listed", kind=self._kind, count=len(self._objects))

    async def _watch(self) -> None:
        """One watch, until the server ends it (or it stays silent too long: resumed too)."""
        stream = self._client.watch(
            self._kind,
            None,
            labels=self._labels,
            timeout_s=self._watch_timeout_s,
            resource_version=self._version,
            bookmarks=True,
            opened=self._live.set,
        )
        loop = asyncio.get_running_loop()
        try:
            async with contextlib.aclosing(stream), asyncio.timeout(None) as silence:
                silence.reschedule(loop.time() + self._silent_after_s)
                async for event, found in stream:
                    silence.reschedule(loop.time() + self._silent_after_s)
                    version = (found.get("metadata") or {}).get("resourceVersion")
                    if event != "BOOKMARK":
                        self._apply(event, found)
                    if version:
                        self._version = str(version)
        except TimeoutError:
            log.warning("informer.silent", kind=self._kind, after_s=self._silent_after_s)

    def _apply(self, event: str, found: Manifest) -> None:
        service_id = _service_of(found)
        if service_id is None:
            return
        uid = _uid(found)
        if event == "DELETED":
            self._hidden.discard(uid)
            known = self._objects.get(service_id)
            if known is not None and _uid(known) == uid:
                del self._objects[service_id]
                self._wake(service_id)
            return
        if uid in self._hidden:
            return
        known = self._objects.get(service_id)
        if known is None or _uid(known) != uid or not _newer(known, found):
            self._objects[service_id] = found
            self._wake(service_id)

    def _wake(self, service_id: str) -> None:
        waiting = self._waiters.pop(service_id, None)
        if waiting is not None:
            waiting.set()


def _service_of(found: Manifest) -> str | None:
    labels = (found.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_SERVICE)
    return str(value) if value else None


def _uid(found: Manifest) -> str:
    return str((found.get("metadata") or {}).get("uid", ""))


def _after(found: Manifest, version: str) -> bool:
    """Whether ``found`` is a later version than a list's ``version``."""
    try:
        return int((found.get("metadata") or {}).get("resourceVersion", "")) > int(version)
    except ValueError:
        return False


def _newer(one: Manifest, other: Manifest) -> bool:
    """Whether ``one`` is a later version of the same object than ``other``."""
    mine = (one.get("metadata") or {}).get("resourceVersion", "")
    theirs = (other.get("metadata") or {}).get("resourceVersion", "")
    try:
        return int(mine) > int(theirs)
    except ValueError:
        return True
