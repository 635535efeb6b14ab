"""The images a Dockerfile pulls, found before the build (their registries are then checked)."""

from __future__ import annotations

import pytest

from slipway_builder.domain.dockerfile import UnreadableImage, pulled_images


def test_from_lines_with_flags_stages_and_scratch() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM --platform=linux/amd64 golang:1.22 AS build\n"
        "RUN go build\n"
        "from build as again\n"
        "FROM scratch\n"
        "COPY --from=build /app /app\n"
        "COPY --from=0 /x /x\n"
        "COPY --from=127.0.0.1:5000/tools:1 /t /t\n"
        "RUN --mount=type=bind,from=10.0.0.5:5000/cache,target=/c true\n"
    )
    assert pulled_images(text, {}) == [
        "golang:1.22",
        "127.0.0.1:5000/tools:1",
        "10.0.0.5:5000/cache",
    ]


def test_continuations_comments_and_the_escape_directive() -> None:
    text = "FROM \\\n# a comment inside\n\n  127.0.0.1:5000/base\nRUN true\n"
    assert pulled_images(text, {}) == ["127.0.0.1:5000/base"]
    backtick = "# escape=`\nFROM `\n  169.254.169.254/x\n"
    assert pulled_images(backtick, {}) == ["169.254.169.254/x"]


def test_global_args_expand_with_the_build_arguments() -> None:
    text = "ARG REG=docker.io\nARG NAME\nFROM ${REG}/library/$NAME:${TAG:-1}\n"
    assert pulled_images(text, {"NAME": "nginx"}) == ["docker.io/library/nginx:1"]
    assert pulled_images(text, {"REG": "127.0.0.1:9", "NAME": "x"}) == ["127.0.0.1:9/library/x:1"]


def test_a_variable_form_it_cannot_expand_refuses_the_build() -> None:
    with pytest.raises(UnreadableImage):
        pulled_images("ARG A\nFROM ${A:?required}/x\n", {})
