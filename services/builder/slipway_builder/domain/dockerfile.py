"""The images a Dockerfile pulls, read before the build so that their registries can be checked.

Pure: no I/O. A Dockerfile pulls an image in ``FROM``, ``COPY --from=`` and ``RUN --mount=from=``
(unless it names an earlier stage, a stage index or ``scratch``). Lines are joined as buildah's
parser joins them (the escape character at the end of a line continues it; comment and blank
lines inside a continuation are skipped; a ``# escape=`` directive changes the character).
Variables in an image reference are expanded from the ARGs declared before the first ``FROM``
(their defaults, or the build's arguments), as the build does; a reference still holding a ``$``
after that (a form this reader does not expand) raises ``UnreadableImage``: the build is refused
rather than pulling from a registry nobody checked.

Heredocs are not read (buildah 1.28 has none): a heredoc line that looks like an instruction would
only add an image to check, never hide one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping

_DIRECTIVE = re.compile(r"#\s*(\w+)\s*=\s*(\S+)\s*$")
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:[-+])(?P<word>[^}$]*))?\}|(?P<plain>[A-Za-z_]\w*))"
)


class UnreadableImage(ValueError):
    """An image reference this reader cannot resolve (the build is refused)."""


def _escape_char(lines: list[str]) -> str:
    """The ``# escape=`` parser directive of the first lines, else backslash."""
    for line in lines:
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            break
        if match[1].lower() == "escape" and match[2] in ("\\", "`"):
            return match[2]
    return "\\"


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION in upper case, its arguments) for each logical line."""
    lines = text.splitlines()
    escape = _escape_char(lines)
    current: list[str] = []
    for raw in lines:
        stripped = raw.strip()
        if current and (not stripped or stripped.startswith("#")):
            continue  # inside a continuation: skipped, as the build skips them
        if not current and (not stripped or stripped.startswith("#")):
            continue
        continued = raw.rstrip().endswith(escape)
        current.append(raw.rstrip()[:-1] if continued else raw)
        if continued:
            continue
        yield _split(" ".join(current))
        current = []
    if current:
        yield _split(" ".join(current))


def _split(line: str) -> tuple[str, str]:
    word, _, rest = line.strip().partition(" ")
    return word.upper(), rest.strip()


def _expand(value: str, args: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        found = args.get(name, "")
        if match["op"] == ":-":
            return found or match["word"]
        if match["op"] == ":+":
            return match["word"] if found else ""
        return found

    expanded = _VARIABLE.sub(one, value)
    if "$" in expanded:
        raise UnreadableImage(
            f"the image reference {value!r} uses a form of variable the builder does not expand"
        )
    return expanded


def _tokens(arguments: str) -> list[str]:
    try:
        return shlex.split(arguments)
    except ValueError:
        return arguments.split()


def pulled_images(text: str, build_args: Mapping[str, str]) -> list[str]:
    """The image references the Dockerfile pulls, in order (stages and ``scratch`` left out)."""
    args: dict[str, str] = {}
    stages: list[str] = []
    images: list[str] = []
    seen_from = False

    def pulled(reference: str) -> None:
        lowered = reference.lower()
        if lowered == "scratch" or lowered in stages or reference.isdigit():
            return
        images.append(reference)

    for instruction, arguments in instructions(text):
        tokens = _tokens(arguments)
        if instruction == "ARG" and not seen_from:
            for token in tokens:
                name, eq, default = token.partition("=")
                args[name] = build_args.get(name, default if eq else "")
        elif instruction == "FROM":
            seen_from = True
            plain = [t for t in tokens if not t.startswith("--")]
            if plain:
                pulled(_expand(plain[0], args))
                named = len(plain) >= 3 and plain[1].lower() == "as"
                stages.append(plain[2].lower() if named else "")
        elif instruction == "COPY":
            for token in tokens:
                if token.lower().startswith("--from="):
                    pulled(_expand(token.partition("=")[2], args))
        elif instruction == "RUN":
            for token in tokens:
                if token.lower().startswith("--mount="):
                    for option in token.partition("=")[2].split(","):
                        key, _, value = option.partition("=")
                        if key.strip().lower() == "from" and value:
                            pulled(_expand(value, args))
    return images
