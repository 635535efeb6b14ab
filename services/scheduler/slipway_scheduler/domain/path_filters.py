"""Path filters: an application with filters is deployed by a push only when one of the files
the push changed matches one of its glob patterns. Pure.

A pattern matches a whole path from the repository's root: ``*`` and ``?`` stay inside one
directory, ``**`` crosses directories (``src/**`` is everything under ``src/``,
``**/*.py`` every Python file, ``Dockerfile`` only the top one). No filters: every push
deploys. A push whose payload does not list its changed files deploys too: missing a deploy
is worse than an extra one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def wanted(filters: Iterable[str], changed: frozenset[str] | None) -> bool:
    """Whether a push that changed ``changed`` deploys an application with ``filters``."""
    patterns = [compiled(f) for f in filters]
    if not patterns or changed is None:
        return True
    return any(p.fullmatch(path) for path in changed for p in patterns)


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    text = pattern.lstrip("/")
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out))
