"""Review findings on concurrent edits (session 6), against the real PostgreSQL: a DELETE that
names a version in If-Match is refused (412) once the resource changed, instead of deleting the
newer change unseen (RFC 9110: a server evaluates If-Match before performing the method)."""

from __future__ import annotations

import pytest

from services.catalog.tests.integration.test_catalog_api import APP, org_with_env

pytestmark = pytest.mark.integration


async def _deletables(api) -> dict[str, str]:  # type: ignore[no-untyped-def]
    org, project, env, _ = await org_with_env(api)
    service = (await api.post(f"/environments/{env}/services", json=APP)).json()["id"]
    stage = (await api.post(f"/environments/{env}/stages", json={"name": "late"})).json()["id"]
    variable = await api.post(
        "/variables", json={"scope": "environment", "parent_id": env, "key": "A", "value": "1"}
    )
    cluster = await api.post(
        f"/organizations/{org}/clusters",
        json={
            "name": "k",
            "api_url": "https://k8s.example.invalid:6443",
            "token": "kube-token-123",
        },
    )
    assert cluster.status_code == 201, cluster.text
    return {
        "project": f"/projects/{project}",
        "environment": f"/environments/{env}",
        "service": f"/services/{service}",
        "stage": f"/stages/{stage}",
        "variable": f"/variables/{variable.json()['id']}",
        "cluster": f"/clusters/{cluster.json()['id']}",
    }


_CHANGES = {
    "project": {"description": "x"},
    "environment": {"name": "renamed"},
    "service": {"description": "x"},
    "stage": {"name": "later"},
    "variable": {"value": "2"},
    "cluster": {"name": "k2"},
}


@pytest.mark.parametrize("kind", list(_CHANGES))
async def test_a_delete_on_a_stale_if_match_answers_412_and_deletes_nothing(api, kind) -> None:
    path = (await _deletables(api))[kind]
    seen = (await api.patch(path, json=_CHANGES[kind])).headers["etag"]
    newer = await api.patch(path, json=_CHANGES[kind], headers={"If-Match": seen})
    assert newer.status_code == 200, newer.text

    stale = await api.delete(path, headers={"If-Match": seen})
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["code"] == "PRECONDITION_FAILED"
    assert stale.headers["etag"] == newer.headers["etag"]

    current = await api.delete(path, headers={"If-Match": newer.headers["etag"]})
    assert current.status_code == 204, current.text
