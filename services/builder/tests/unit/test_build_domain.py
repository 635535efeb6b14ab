"""The builder's pure build rules: the ids its events carry, which commits may be looked up in the
registry before fetching, and the forms of a token the build log hides."""

from __future__ import annotations

import base64
import uuid

from slipway_builder.domain.builds import Build, event_ids, is_full_commit, secret_forms


def test_every_event_names_the_build_and_what_asked_for_it() -> None:
    build = Build(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        environment_id=uuid.uuid4(),
        service_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        source={"url": "https://git.example/app.git"},
        build_args={},
        image_repository="registry.example/app",
        git_token_sealed=None,
        git_ssh_key_sealed=None,
        git_known_hosts=None,
        status="RUNNING",  # not an id: not carried
        worker_pid=None,
        pgid=None,
    )
    assert event_ids(build) == {
        "build_id": build.id,
        "organization_id": build.organization_id,
        "service_id": build.service_id,
        "deployment_id": build.deployment_id,
        "environment_id": build.environment_id,
    }


def test_only_a_whole_sha_is_looked_up_before_fetching() -> None:
    assert is_full_commit("a" * 40)
    assert is_full_commit("0123456789ABCDEFabcdef0123456789abcdef01")
    assert not is_full_commit("a" * 39)  # a prefix names no tag
    assert not is_full_commit("a" * 41)
    assert not is_full_commit("main")
    assert not is_full_commit("")


def test_the_log_hides_the_token_and_the_header_git_sends_it_in() -> None:
    forms = secret_forms("s3cret")
    assert forms[0] == "s3cret"
    assert base64.b64decode(forms[1]) == b"x-access-token:s3cret"
    assert secret_forms(None) == [] and secret_forms("") == []
