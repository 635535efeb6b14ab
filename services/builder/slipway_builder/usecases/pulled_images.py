"""The registries a Dockerfile pulls from, checked before buildah runs: a build may not pull
another organization's images from the platform's registry, nor reach a registry the platform
does not connect to (the egress guard: loopback, private, link-local and metadata addresses are
refused unless it is the platform's registry or the operator allow-listed it)."""

from __future__ import annotations

from pathlib import Path

from slipway_builder.adapters.sources import Egress
from slipway_builder.domain.builds import DOCKERFILE_MAX_BYTES, BuildError
from slipway_builder.domain.dockerfile import UnreadableImage, pulled_images
from slipway_libs.egress import EgressError, TargetNotAllowed
from slipway_libs.registries import builds_of_another, check_registry, registry_of


async def check_pulled_images(
    dockerfile: Path,
    *,
    build_args: dict[str, str],
    organization_id: str,
    platform_registry: str,
    egress: Egress,
) -> None:
    """Raise ``BuildError`` when the Dockerfile pulls from a registry it may not (a name that
    does not resolve is left to buildah)."""
    with dockerfile.open("rb") as fh:
        raw = fh.read(DOCKERFILE_MAX_BYTES + 1)
    if len(raw) > DOCKERFILE_MAX_BYTES:
        raise BuildError("BUILD_FAILED", "The Dockerfile is larger than 1 MiB.")
    try:
        images = pulled_images(raw.decode(errors="replace"), build_args)
    except UnreadableImage as exc:
        raise BuildError("TARGET_NOT_ALLOWED", f"{exc}: give the image literally") from None
    for image in images:
        if builds_of_another(
            image, platform_registry=platform_registry, organization_id=organization_id
        ):
            message = f"The Dockerfile pulls {image}: another organization's build."
            raise BuildError("TARGET_NOT_ALLOWED", message)
        try:
            await check_registry(
                registry_of(image),
                platform_registry=platform_registry,
                policy=egress.policy,
                resolver=egress.resolver,
            )
        except TargetNotAllowed as refused:
            message = f"The Dockerfile pulls {image}: {refused.message}."
            raise BuildError("TARGET_NOT_ALLOWED", message) from None
        except EgressError:
            continue  # does not resolve: buildah's pull fails on its own
        except ValueError:
            message = f"The Dockerfile names an invalid image reference: {image!r}."
            raise BuildError("BUILD_FAILED", message) from None
