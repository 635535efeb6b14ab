"""The names that must be unique, and the clash each one answers when taken (409, stable codes)."""

from __future__ import annotations

from slipway_libs.errors import Clash


def cluster_name_taken() -> Clash:
    return Clash("CLUSTER_NAME_TAKEN", "A cluster with this name exists.", field="name")


def project_name_taken() -> Clash:
    return Clash("PROJECT_NAME_TAKEN", "A project with this name exists.", field="name")


def environment_name_taken() -> Clash:
    return Clash(
        "ENVIRONMENT_NAME_TAKEN",
        "An environment with this name exists in the project.",
        field="name",
    )


def stage_name_taken() -> Clash:
    return Clash("STAGE_NAME_TAKEN", "A stage with this name exists.", field="name")


def service_name_taken() -> Clash:
    return Clash(
        "SERVICE_NAME_TAKEN", "A service with this name exists in the environment.", field="name"
    )
