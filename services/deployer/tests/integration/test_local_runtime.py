"""The ``local`` runtime on the real thing: buildah, chroot isolation, the devstack's registry and
its busybox base image (``SLIPWAY_BASE_IMAGE``: ``/bin/sh``, ``httpd``...).

Every container and process carries this module's token in its name, so the module-scoped
cleanup removes whatever a failing test left behind (no stray process, no stray container).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from slipway_deployer.adapters.runtime import (
    FailureReason,
    HealthSpec,
    PortSpec,
    RunStatus,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime._buildah import BuildahStorage
from slipway_deployer.adapters.runtime._state import ServiceRecord
from slipway_deployer.adapters.runtime.local import LocalRuntime, LocalRuntimeConfig
from slipway_libs.testing.plugin import Devstack

pytestmark = pytest.mark.integration

TOKEN = f"t{uuid.uuid4().hex[:8]}"
SECRET = f"s3cr3t-{uuid.uuid4().hex}"
# fast backoff and polling; the start timeout is only a wait here (a start on a crowded machine,
# buildah being niced, took over 20 s): the tests of the timeout itself use their own config
FAST = LocalRuntimeConfig(
    start_timeout_s=120, stop_grace_s=3, settle_s=0.3, backoff_base_s=0.3, poll_s=0.05
)


def serve(page: str = "hi") -> list[str]:
    return [
        "/bin/sh",
        "-c",
        f'mkdir -p /www && echo "{page}" > /www/index.html && exec httpd -f -p "$PORT" -h /www',
    ]


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


@pytest.fixture(scope="module")
def storage(devstack: Devstack) -> BuildahStorage:
    return BuildahStorage.from_env(devstack.env)


@pytest.fixture(scope="module")
def image(devstack: Devstack) -> str:
    return devstack.env["SLIPWAY_BASE_IMAGE"]


def buildah(storage: BuildahStorage, *args: str) -> str:
    argv = ["buildah", "--root", storage.root, "--runroot", storage.runroot]
    return subprocess.run(
        [*argv, "--storage-driver", storage.driver, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def our_containers(storage: BuildahStorage) -> list[str]:
    # the store is shared with any other stack on the machine: a listing can fail while another
    # process removes a container (exit 125 in a clean-clone run beside a busy stack)
    for attempt in range(5):
        try:
            names = buildah(storage, "containers", "--all", "--format", "{{.ContainerName}}")
            return [name for name in names.split() if TOKEN in name]
        except subprocess.CalledProcessError as failure:
            if attempt == 4:
                raise AssertionError(f"buildah containers failed: {failure.stderr}") from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def our_pids(marker: str = TOKEN) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def argv_mentions(value: str) -> list[int]:
    return our_pids(value)


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(storage: BuildahStorage) -> Iterator[None]:
    yield
    stray_pids, stray = our_pids(), our_containers(storage)
    for pid in stray_pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in stray:
        buildah(storage, "rm", name)
    assert (stray_pids, stray) == ([], []), "the tests left processes or containers behind"


@pytest.fixture
async def runtime(tmp_path: Path, storage: BuildahStorage) -> AsyncIterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path / "state", storage, FAST)
    yield rt
    for service_id in list(rt._services):
        await rt.delete(service_id)
    await rt.close()


def workload(image: str, name: str, **kw: object) -> Workload:
    fields: dict[str, object] = {
        "service_id": f"{TOKEN}-{name}",
        "environment_id": f"{TOKEN}-env",
        "name": name,
        "image": image,
        "ports": [PortSpec(8080, default=True)],
    }
    return Workload(**{**fields, **kw})  # type: ignore[arg-type]


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)


async def port_closed(url: str) -> bool:
    try:
        await get(url)
    except httpx.TransportError:
        return True
    return False


async def url_closed(url: str | None) -> bool:
    return url is not None and await port_closed(url)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    """Polls ``check``: a wait on processes (restarts, ports), generous for a crowded machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true within {timeout_s} s: {check}")


async def test_apply_serves_the_env_then_stop_restart_and_redeploy(
    runtime: LocalRuntime, image: str, storage: BuildahStorage
) -> None:
    spec = workload(
        image,
        "web",
        command=serve("greeting=$GREETING port=$PORT"),
        env={"GREETING": SECRET},
        health=HealthSpec(type="http", path="/index.html", period_s=1),
    )
    deployed = await runtime.apply(spec)  # how long it takes: bench/deploy_overhead.py
    assert deployed.url is not None and deployed.url.startswith("http://127.0.0.1:")
    port = deployed.host_ports[8080]
    page = (await get(deployed.url)).text
    assert page.strip() == f"greeting={SECRET} port={port}"
    assert argv_mentions(SECRET) == [], "an env value is visible in some process's argv"
    state = await runtime.status(spec.service_id)
    assert (state.status, state.restarts, state.urls) == (RunStatus.RUNNING, 0, deployed.urls)

    await runtime.stop(spec.service_id)
    assert await port_closed(deployed.url)
    assert (await runtime.status(spec.service_id)).status is RunStatus.STOPPED
    assert our_pids(spec.service_id) == []

    await runtime.restart(spec.service_id)
    assert SECRET in (await get(deployed.url)).text

    first_container = runtime._services[spec.service_id].record.container
    again = await runtime.apply(
        workload(image, "web", command=serve("v2 $GREETING"), env={"GREETING": "two"})
    )
    assert again.url == deployed.url, "a redeploy keeps its host port"
    assert (await get(deployed.url)).text.strip() == "v2 two"
    assert first_container not in our_containers(storage)


async def test_what_a_service_runs_is_nicer_than_the_deployer(
    runtime: LocalRuntime, image: str
) -> None:
    spec = workload(image, "nice", command=serve("nice"))
    await runtime.apply(spec)
    pids = our_pids(spec.service_id)  # `buildah run` and what it started for the service
    assert pids
    # 19 is the kernel's ceiling: a deployer already that nice (a run under `nice -n 19`)
    # cannot start anything nicer
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {
        min(19, os.getpriority(os.PRIO_PROCESS, 0) + FAST.nice)
    }
    if Path("/proc/self/autogroup").exists():  # where sessions are weighed against each other
        groups = {Path(f"/proc/{pid}/autogroup").read_text().split()[-1] for pid in pids}
        assert groups == {str(FAST.nice)}


async def test_a_crashing_service_is_restarted_with_backoff(
    runtime: LocalRuntime, image: str
) -> None:
    spec = workload(
        image,
        "crash",
        command=sh('httpd -f -p "$PORT" -h / & sleep 1; echo "going down" >&2; kill $!; exit 3'),
    )
    await runtime.apply(spec)

    async def restarted() -> bool:
        return (await runtime.status(spec.service_id)).restarts >= 1

    await eventually(restarted)
    state = await runtime.status(spec.service_id)
    assert state.status is RunStatus.WARNING
    assert state.message is not None and "code 3" in state.message
    lines = [line.text for line in runtime._services[spec.service_id].hub.recent()]
    assert "going down" in lines


async def test_a_service_failing_its_health_check_is_restarted(
    runtime: LocalRuntime, image: str
) -> None:
    script = (
        'mkdir -p /www; echo ok > /www/ok; (sleep 1; rm /www/ok) & exec httpd -f -p "$PORT" -h /www'
    )
    health = HealthSpec(type="http", path="/ok", period_s=0.3, timeout_s=0.5, failure_threshold=2)
    spec = workload(image, "sick-later", command=sh(script), health=health)
    await runtime.apply(spec)

    async def restarted() -> bool:
        return (await runtime.status(spec.service_id)).restarts >= 1

    await eventually(restarted)
    assert (await runtime.status(spec.service_id)).status is RunStatus.WARNING


async def test_startup_failures_are_reported(
    tmp_path: Path, storage: BuildahStorage, image: str
) -> None:
    # a crash ends the start at once, however long the start may take: a loaded machine
    # (buildah is niced) must not turn it into a start timeout
    patient = LocalRuntime(
        tmp_path / "patient",
        storage,
        LocalRuntimeConfig(start_timeout_s=60, stop_grace_s=2, poll_s=0.05),
    )
    rt = LocalRuntime(
        tmp_path / "state",
        storage,
        LocalRuntimeConfig(start_timeout_s=1.5, stop_grace_s=2, poll_s=0.05),
    )
    try:
        early = workload(image, "early", command=sh('echo "cannot connect to db" >&2; exit 2'))
        with pytest.raises(RuntimeFailure) as crashed:
            await patient.apply(early)
        assert crashed.value.reason is FailureReason.CRASHED
        assert "cannot connect to db" in crashed.value.message
        assert (await patient.status(early.service_id)).status is RunStatus.ERROR

        health = HealthSpec(type="http", path="/nothing-here")
        sick = workload(image, "sick", command=serve(), health=health)
        with pytest.raises(RuntimeFailure) as unhealthy:
            await rt.apply(sick)
        assert unhealthy.value.reason is FailureReason.HEALTHCHECK_FAILED
        assert our_pids(sick.service_id) == []
    finally:
        for runtime in (patient, rt):
            for service_id in list(runtime._services):
                await runtime.delete(service_id)
            await runtime.close()


async def test_what_a_process_failing_at_once_printed_is_in_its_failure(
    tmp_path: Path, storage: BuildahStorage, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = LocalRuntime(tmp_path / "state", storage, FAST)
    save = rt._state.save

    def slow_save(record: ServiceRecord) -> None:  # the process prints and dies meanwhile
        save(record)
        if record.pid is not None:
            time.sleep(1)

    monkeypatch.setattr(rt._state, "save", slow_save)
    try:
        early = workload(image, "early", command=sh('echo "cannot connect to db" >&2; exit 2'))
        with pytest.raises(RuntimeFailure) as crashed:
            await rt.apply(early)
        assert "cannot connect to db" in crashed.value.message
    finally:
        for service_id in list(rt._services):
            await rt.delete(service_id)
        await rt.close()


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited and is not reaped yet (a zombie: its parent has not polled)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_a_process_that_exited_is_a_crash_even_once_the_start_time_is_up(
    tmp_path: Path, storage: BuildahStorage, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start deadline already passed at the first probe (a crowded machine's pace, made
    certain here): a process that has exited by then fails as the crash it is, with its output,
    not as a health timeout."""
    rt = LocalRuntime(
        tmp_path / "state", storage, LocalRuntimeConfig(start_timeout_s=0, stop_grace_s=3)
    )
    save = rt._state.save

    def save_once_dead(record: ServiceRecord) -> None:  # the runtime looks only afterwards
        save(record)
        if record.pid is not None:
            deadline = time.monotonic() + 120
            while not _exited(record.pid):
                assert time.monotonic() < deadline, "the process did not exit"
                time.sleep(0.05)

    monkeypatch.setattr(rt._state, "save", save_once_dead)
    try:
        early = workload(image, "late-look", command=sh('echo "no config file" >&2; exit 3'))
        with pytest.raises(RuntimeFailure) as crashed:
            await rt.apply(early)
        assert crashed.value.reason is FailureReason.CRASHED, crashed.value.message
        assert "no config file" in crashed.value.message
    finally:
        for service_id in list(rt._services):
            await rt.delete(service_id)
        await rt.close()


async def test_what_a_service_prints_goes_straight_to_its_log_files(
    tmp_path: Path, storage: BuildahStorage, image: str
) -> None:
    """Not through ``buildah run``'s stdio relay, which exits without draining it: what a
    process printed just before it died could be lost (a flaky failure message under load)."""
    rt = LocalRuntime(tmp_path / "state", storage, FAST)
    script = 'echo "out=$(readlink /proc/$$/fd/1) err=$(readlink /proc/$$/fd/2)" >&2; exit 2'
    try:
        with pytest.raises(RuntimeFailure) as crashed:
            await rt.apply(workload(image, "direct", command=sh(script)))
        assert "out=/.slipway/stdout.log err=/.slipway/stderr.log" in crashed.value.message
    finally:
        for service_id in list(rt._services):
            await rt.delete(service_id)
        await rt.close()


async def test_logs_stream_lines_as_they_come(runtime: LocalRuntime, image: str) -> None:
    script = 'i=0; while true; do echo "tick $i"; echo "warn $i" >&2; i=$((i+1)); sleep 0.3; done'
    spec = workload(image, "ticker", command=sh(script), ports=[])
    await runtime.apply(spec)
    seen = []
    async with asyncio.timeout(60):  # a wait for five ticks, however crowded the machine
        async for line in runtime.logs(spec.service_id):
            seen.append((line, time.monotonic()))
            if sum(1 for s, _ in seen if s.stream == "stdout") >= 5:
                break
    stdout = [(s.text, t) for s, t in seen if s.stream == "stdout"]
    numbers = [int(text.removeprefix("tick ")) for text, _ in stdout]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert any(s.stream == "stderr" and s.text.startswith("warn ") for s, _ in seen)
    assert stdout[-1][1] - stdout[-3][1] > 0.3, "lines arrived in a batch, not as they came"


async def test_delete_leaves_nothing(
    runtime: LocalRuntime, image: str, storage: BuildahStorage
) -> None:
    spec = workload(image, "gone", command=serve())
    deployed = await runtime.apply(spec)
    container = runtime._services[spec.service_id].record.container
    assert container in our_containers(storage) and our_pids(container)
    await runtime.delete(spec.service_id)
    assert our_pids(container) == []
    assert container not in our_containers(storage)
    assert deployed.url is not None and await port_closed(deployed.url)
    assert not list((runtime._state.root / "services").iterdir())
    with pytest.raises(RuntimeFailure) as missing:
        await runtime.status(spec.service_id)
    assert missing.value.reason is FailureReason.NOT_FOUND
    await runtime.delete(spec.service_id)  # idempotent


async def test_a_new_runtime_adopts_what_runs(
    tmp_path: Path, storage: BuildahStorage, image: str
) -> None:
    state = tmp_path / "state"
    first = LocalRuntime(state, storage, FAST)
    spec = workload(image, "adopted", command=serve("still here"))
    deployed = await first.apply(spec)
    container = first._services[spec.service_id].record.container
    pids_before = sorted(our_pids(container))
    await first.close()  # the deployer goes away; the service does not

    second = LocalRuntime(state, storage, FAST)
    try:
        assert await second.adopt() == [spec.service_id]
        state_now = await second.status(spec.service_id)
        assert (state_now.status, state_now.urls) == (RunStatus.RUNNING, deployed.urls)
        assert sorted(our_pids(container)) == pids_before, "adoption started a duplicate"
        assert deployed.url is not None
        assert (await get(deployed.url)).text.strip() == "still here"
        with pytest.raises(RuntimeFailure):
            LocalRuntime(state, storage, FAST)  # one live runtime per state dir
    finally:
        await second.delete(spec.service_id)
        await second.close()
    assert our_pids(container) == []


async def test_a_service_that_died_unwatched_is_restarted_on_adoption(
    tmp_path: Path, storage: BuildahStorage, image: str
) -> None:
    state = tmp_path / "state"
    first = LocalRuntime(state, storage, FAST)
    spec = workload(image, "orphan", command=serve("back"))
    deployed = await first.apply(spec)
    record = first._services[spec.service_id].record
    await first.close()
    assert record.pid is not None
    os.killpg(record.pid, signal.SIGKILL)  # it dies while no deployer watches
    await eventually(lambda: url_closed(deployed.url))

    second = LocalRuntime(state, storage, FAST)
    try:
        assert await second.adopt() == [spec.service_id]
        assert deployed.url is not None

        async def serving() -> bool:
            return not await port_closed(deployed.url or "")

        await eventually(serving)
        assert (await get(deployed.url)).text.strip() == "back"
        assert (await second.status(spec.service_id)).restarts == 1
    finally:
        await second.delete(spec.service_id)
        await second.close()


async def test_run_job_returns_exit_code_and_output(
    runtime: LocalRuntime, image: str, storage: BuildahStorage
) -> None:
    script = (
        'mkdir -p /slipway && echo "{\\"rows\\": 42}" > /slipway/output.json; echo done; exit 3'
    )
    job = workload(image, "job", command=sh(script), ports=[], kind="job")
    result = await runtime.run_job(job, timeout_s=30)
    assert result.exit_code == 3
    assert result.output is not None and result.output.strip() == '{"rows": 42}'
    assert (await runtime.status(job.service_id)).status is RunStatus.ERROR

    quiet = workload(image, "quiet", command=sh("true"), ports=[], kind="job")
    assert (await runtime.run_job(quiet, timeout_s=30)).output is None

    # a name a shell cannot export: the env goes through `buildah config --env` instead (`env`
    # runs without a shell: a shell would drop such a name from its children's environment)
    odd_env = {"dotted.name": "v1", "PLAIN": "v2"}
    odd = workload(image, "odd", command=["env"], env=odd_env, ports=[], kind="job")
    assert (await runtime.run_job(odd, timeout_s=30)).exit_code == 0
    printed = {line.text for line in runtime._job_hubs[odd.service_id].recent()}
    assert {"dotted.name=v1", "PLAIN=v2"} <= printed

    slow = workload(image, "slow", command=sh("sleep 30"), ports=[], kind="job")
    with pytest.raises(RuntimeFailure) as timeout:
        await runtime.run_job(slow, timeout_s=1)
    assert timeout.value.reason is FailureReason.TIMEOUT
    assert our_containers(storage) == [] and our_pids() == []
