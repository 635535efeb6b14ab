"""Variable resolution: precedence, override, alias, built-ins, interpolation, secrecy, files,
keys; the save/delete checks; and properties over random variable sets (hypothesis)."""

from __future__ import annotations

import graphlib
import json
import re
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slipway_contracts.variables import Resolved, VariableIn
from slipway_resolver import (
    MAX_ENV_STRING_BYTES,
    ResolutionError,
    check_can_delete,
    check_can_save,
    find_problems,
    masked,
    resolve,
    validate_key,
)

FAST = settings(max_examples=200, deadline=None)
LEFTOVER = re.compile(r"\{\{[A-Za-z_][A-Za-z0-9_]*\}\}")
SCOPES = ("project", "environment", "service")


def var(
    key: str,
    value: str = "",
    *,
    scope: str = "service",
    kind: str = "value",
    secret: bool = False,
    mount: str | None = None,
    id: UUID | None = None,
) -> VariableIn:
    return VariableIn(
        id=id or uuid4(),
        scope=scope,  # type: ignore[arg-type]
        key=key,
        kind=kind,  # type: ignore[arg-type]
        value=value,
        is_secret=secret,
        mount_path=mount,
    )


def builtin(
    key: str, value: str, *, scope: str = "environment", secret: bool = False
) -> VariableIn:
    return var(key, value, scope=scope, kind="built_in", secret=secret)


def values(variables: list[VariableIn]) -> dict[str, str]:
    return {key: r.value for key, r in resolve(variables).items()}


def error_of(variables: list[VariableIn]) -> ResolutionError:
    with pytest.raises(ResolutionError) as caught:
        resolve(variables)
    return caught.value


# --- table: what resolves, and to what ----------------------------------------------------------

RESOLVES = [
    pytest.param(
        [var("A", "p", scope="project"), var("A", "e", scope="environment"), var("A", "s")],
        {"A": "s"},
        id="service beats environment beats project",
    ),
    pytest.param(
        [var("A", "p", scope="project"), var("A", "e", scope="environment")],
        {"A": "e"},
        id="environment beats project",
    ),
    pytest.param(
        [var("A", "1", scope="project"), var("B", "2", scope="environment"), var("C", "3")],
        {"A": "1", "B": "2", "C": "3"},
        id="distinct keys from every scope are all kept",
    ),
    pytest.param(
        [var("A", "p", scope="project"), var("A", "o", kind="override")],
        {"A": "o"},
        id="override replaces a broader value",
    ),
    pytest.param(
        [
            var("A", "p", scope="project"),
            var("A", "e", scope="environment", kind="override"),
            var("A", "s", kind="override"),
        ],
        {"A": "s"},
        id="override of an override",
    ),
    pytest.param(
        [var("A", "e", scope="environment"), var("A", "s", kind="override")],
        {"A": "s"},
        id="service overrides environment",
    ),
    pytest.param(
        [var("A", "x"), var("B", "A", kind="alias")],
        {"A": "x", "B": "x"},
        id="alias takes its target's value",
    ),
    pytest.param(
        [var("A", "x"), var("B", "A", kind="alias"), var("C", "B", kind="alias")],
        {"A": "x", "B": "x", "C": "x"},
        id="alias chain",
    ),
    pytest.param(
        [
            builtin("SLIPWAY_PG_DATABASE_URL", "postgresql://db:5432/app"),
            var("DATABASE_URL", "SLIPWAY_PG_DATABASE_URL", scope="project", kind="alias"),
        ],
        {
            "SLIPWAY_PG_DATABASE_URL": "postgresql://db:5432/app",
            "DATABASE_URL": "postgresql://db:5432/app",
        },
        id="alias of a built-in, even from a broader scope",
    ),
    pytest.param(
        [var("HOST", "api"), var("PORT", "8080"), var("URL", "http://{{HOST}}:{{PORT}}/v1")],
        {"HOST": "api", "PORT": "8080", "URL": "http://api:8080/v1"},
        id="interpolation",
    ),
    pytest.param(
        [var("A", "a"), var("B", "<{{A}}>"), var("C", "[{{B}}{{B}}]")],
        {"A": "a", "B": "<a>", "C": "[<a><a>]"},
        id="nested interpolation",
    ),
    pytest.param(
        [
            builtin("SLIPWAY_SERVICE_ID", "s-1", scope="service"),
            var("NAME", "svc-{{SLIPWAY_SERVICE_ID}}"),
        ],
        {"SLIPWAY_SERVICE_ID": "s-1", "NAME": "svc-s-1"},
        id="interpolation of a built-in",
    ),
    pytest.param(
        [var("A", "a"), var("B", "{{A}}!"), var("C", "B", kind="alias")],
        {"A": "a", "B": "a!", "C": "a!"},
        id="alias of an interpolated value",
    ),
    pytest.param(
        [var("B", "p", scope="project"), var("B", "s"), var("A", "{{B}}", scope="project")],
        {"A": "s", "B": "s"},
        id="a reference sees the winner, whatever the referrer's scope",
    ),
    pytest.param([var("A", "{{{{A}}")], {"A": "{{A}}"}, id="escape"),
    pytest.param(
        [var("A", "a"), var("B", "{{{{{{A}}")], {"A": "a", "B": "{{a"}, id="escape then reference"
    ),
    pytest.param([var("A", "{{{{{{{{")], {"A": "{{{{"}, id="escaped escape"),
    pytest.param(
        [var("A", "{{ A }} {A} {{1A}} }} {{.Values.x}} {{")],
        {"A": "{{ A }} {A} {{1A}} }} {{.Values.x}} {{"},
        id="other braces are literal",
    ),
    pytest.param(
        [var("A", "{{{{B}}"), var("C", "{{A}}")],
        {"A": "{{B}}", "C": "{{B}}"},
        id="inserted text is not scanned again",
    ),
    pytest.param(
        [builtin("SLIPWAY_DB_PASSWORD", "p{{X}}w", secret=True)],
        {"SLIPWAY_DB_PASSWORD": "p{{X}}w"},
        id="built-in values are verbatim",
    ),
    pytest.param(
        [var("A", "{{MISSING}}", scope="project"), var("A", "fine")],
        {"A": "fine"},
        id="a shadowed variable is not resolved",
    ),
    pytest.param([var("EMPTY", "")], {"EMPTY": ""}, id="empty value"),
    pytest.param([], {}, id="nothing"),
]


@pytest.mark.parametrize(("variables", "expected"), RESOLVES)
def test_resolves(variables: list[VariableIn], expected: dict[str, str]) -> None:
    assert values(variables) == expected


# --- table: what fails, with which stable code and key ------------------------------------------

TOO_LONG = "A" * 129
DOUBLING = [var("D0", "xxxxxxxx")] + [var(f"D{i}", f"{{{{D{i - 1}}}}}" * 2) for i in range(1, 40)]

FAILS = [
    pytest.param(
        [var("A", "o", scope="project", kind="override")],
        "OVERRIDE_TARGET_MISSING",
        "A",
        id="override at project scope",
    ),
    pytest.param(
        [var("A", "o", kind="override")], "OVERRIDE_TARGET_MISSING", "A", id="override of nothing"
    ),
    pytest.param(
        [var("A", "e", scope="environment", kind="override"), var("A", "s")],
        "OVERRIDE_TARGET_MISSING",
        "A",
        id="shadowed override of nothing",
    ),
    pytest.param([var("B", "A", kind="alias")], "ALIAS_TARGET_MISSING", "B", id="alias of nothing"),
    pytest.param([var("A", "A", kind="alias")], "VARIABLE_CYCLE", "A", id="alias of itself"),
    pytest.param(
        [var("A", "B", kind="alias"), var("B", "A", kind="alias")],
        "VARIABLE_CYCLE",
        "A",
        id="alias cycle",
    ),
    pytest.param([var("B", "a{{A}}")], "INTERPOLATION_MISSING", "B", id="interpolation of nothing"),
    pytest.param([var("A", "x{{A}}")], "VARIABLE_CYCLE", "A", id="self interpolation"),
    pytest.param(
        [var("B", "{{C}}"), var("C", "{{D}}"), var("D", "{{B}}")],
        "VARIABLE_CYCLE",
        "B",
        id="interpolation cycle",
    ),
    pytest.param(
        [var("A", "B", kind="alias"), var("B", "{{A}}")],
        "VARIABLE_CYCLE",
        "A",
        id="cycle through alias and interpolation",
    ),
    pytest.param(
        [var("A", "p", scope="project"), var("A", "{{A}}-x", kind="override")],
        "VARIABLE_CYCLE",
        "A",
        id="an override cannot use the value it replaces",
    ),
    pytest.param([var("1A")], "INVALID_KEY", "1A", id="key starts with a digit"),
    pytest.param([var("A-B")], "INVALID_KEY", "A-B", id="key with a dash"),
    pytest.param([var("")], "INVALID_KEY", "", id="empty key"),
    pytest.param([var(TOO_LONG)], "INVALID_KEY", TOO_LONG, id="key too long"),
    pytest.param([var("SLIPWAY_X")], "RESERVED_KEY", "SLIPWAY_X", id="reserved key"),
    pytest.param(
        [builtin("PROJECT_ID", "x")], "INVALID_KEY", "PROJECT_ID", id="built-in outside SLIPWAY_"
    ),
    pytest.param(
        [builtin("SLIPWAY_X", "x", scope="project")],
        "INVALID_SCOPE",
        "SLIPWAY_X",
        id="built-in at project scope",
    ),
    pytest.param(
        [var("A", "1"), var("A", "2")], "DUPLICATE_KEY", "A", id="same key twice in one scope"
    ),
    pytest.param(
        [var("A", "not a key", kind="alias")], "ALIAS_TARGET_INVALID", "A", id="alias of a non-name"
    ),
    pytest.param(
        [var("F", "x", kind="file")], "INVALID_MOUNT_PATH", "F", id="file without mount path"
    ),
    pytest.param(
        [var("F", "x", kind="file", mount="etc/f")],
        "INVALID_MOUNT_PATH",
        "F",
        id="relative mount path",
    ),
    pytest.param(
        [var("F", "x", kind="file", mount="/")],
        "INVALID_MOUNT_PATH",
        "F",
        id="mount path is the root",
    ),
    pytest.param(
        [var("F", "x", kind="file", mount="/a/../b")],
        "INVALID_MOUNT_PATH",
        "F",
        id="mount path with ..",
    ),
    pytest.param(
        [var("F", "x", kind="file", mount="/etc/")],
        "INVALID_MOUNT_PATH",
        "F",
        id="mount path is a directory",
    ),
    pytest.param(
        [var("A", "x", mount="/etc/a")], "INVALID_MOUNT_PATH", "A", id="mount path on a value"
    ),
    pytest.param(
        [var("F", "1", kind="file", mount="/etc/f"), var("G", "2", kind="file", mount="/etc/f")],
        "MOUNT_PATH_CONFLICT",
        "F",
        id="two files at one path",
    ),
    pytest.param([var("A", "a\x00b")], "INVALID_VALUE", "A", id="NUL in a value"),
    pytest.param([var("A", "\ud800")], "INVALID_VALUE", "A", id="lone surrogate"),
    pytest.param(
        [var("A", "x" * MAX_ENV_STRING_BYTES)], "VALUE_TOO_LARGE", "A", id="env value too large"
    ),
    pytest.param(DOUBLING, "VALUE_TOO_LARGE", "D14", id="doubling chain stops early"),
]


@pytest.mark.parametrize(("variables", "code", "key"), FAILS)
def test_fails(variables: list[VariableIn], code: str, key: str) -> None:
    error = error_of(variables)
    assert (error.code, error.key) == (code, key)
    assert isinstance(error, ValueError)
    assert error.message and error.details["key"] == key


def test_a_cycle_error_names_the_cycle_from_its_smallest_key() -> None:
    error = error_of([var("C", "{{A}}"), var("B", "{{C}}"), var("A", "B", kind="alias")])
    assert error.path == ["A", "B", "C", "A"]
    assert "A -> B -> C -> A" in error.message
    assert error.details == {"key": "A", "path": ["A", "B", "C", "A"]}


def test_a_long_cycle_is_found_without_recursion() -> None:
    n = 3000
    chain = [var(f"K{i:04}", f"{{{{K{(i + 1) % n:04}}}}}") for i in range(n)]
    error = error_of(chain)
    assert error.code == "VARIABLE_CYCLE"
    assert len(error.path) == n + 1 and error.path[0] == error.path[-1] == "K0000"


def test_a_long_alias_chain_resolves() -> None:
    n = 3000
    chain = [var("K0000", "end")] + [
        var(f"K{i:04}", f"K{i - 1:04}", kind="alias") for i in range(1, n)
    ]
    resolved = resolve(chain)
    assert resolved[f"K{n - 1:04}"].value == "end"
    assert len(resolved[f"K{n - 1:04}"].via) == n - 1


def test_a_file_may_be_larger_than_an_environment_variable() -> None:
    big = "x" * (MAX_ENV_STRING_BYTES + 10)
    assert resolve([var("F", big, kind="file", mount="/etc/f")])["F"].value == big


def test_find_problems_reports_every_root_problem_once() -> None:
    problems = find_problems(
        [
            var("A", "{{MISSING}}"),
            var("B", "{{A}}"),  # only broken because A is: not reported
            var("C", "{{D}}"),
            var("D", "C", kind="alias"),
            var("SLIPWAY_X"),
        ]
    )
    assert [(p.code, p.key) for p in problems] == [
        ("INTERPOLATION_MISSING", "A"),
        ("VARIABLE_CYCLE", "C"),
        ("RESERVED_KEY", "SLIPWAY_X"),
    ]


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["A", "_", "a_b", "DATABASE_URL", "X1", "A" * 128, "slipway_lower"])
def test_valid_keys(key: str) -> None:
    validate_key(key)


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "INVALID_KEY"),
        ("1A", "INVALID_KEY"),
        ("A B", "INVALID_KEY"),
        ("A.B", "INVALID_KEY"),
        ("É", "INVALID_KEY"),
        ("A\n", "INVALID_KEY"),
        ("A" * 129, "INVALID_KEY"),
        ("SLIPWAY_", "RESERVED_KEY"),
        ("SLIPWAY_PROJECT_ID", "RESERVED_KEY"),
    ],
)
def test_invalid_keys(key: str, code: str) -> None:
    with pytest.raises(ResolutionError) as caught:
        validate_key(key)
    assert (caught.value.code, caught.value.key) == (code, key)


# --- secrecy, files, provenance -------------------------------------------------------------------


def secrets(variables: list[VariableIn]) -> dict[str, bool]:
    return {key: r.is_secret for key, r in resolve(variables).items()}


def test_interpolating_a_secret_makes_a_secret_transitively() -> None:
    got = secrets(
        [var("PW", "x", secret=True), var("URL", "u:{{PW}}"), var("CMD", "{{URL}}"), var("N", "n")]
    )
    assert got == {"CMD": True, "N": False, "PW": True, "URL": True}


def test_an_alias_takes_its_targets_secrecy_and_keeps_its_own() -> None:
    got = secrets(
        [
            var("PW", "x", secret=True),
            var("ALIAS", "PW", kind="alias"),
            var("PLAIN", "y"),
            var("HIDDEN", "PLAIN", kind="alias", secret=True),
        ]
    )
    assert got == {"ALIAS": True, "HIDDEN": True, "PLAIN": False, "PW": True}


def test_an_override_of_a_secret_stays_secret() -> None:
    got = secrets([var("PW", "x", scope="project", secret=True), var("PW", "y", kind="override")])
    assert got == {"PW": True}


def test_a_plain_value_that_shadows_a_secret_is_a_new_variable() -> None:
    assert secrets([var("PW", "x", scope="project", secret=True), var("PW", "y")]) == {"PW": False}


def test_a_secret_built_in_propagates() -> None:
    got = secrets(
        [
            builtin("SLIPWAY_PG_PASSWORD", "pw", secret=True),
            var("DSN", "pg://u:{{SLIPWAY_PG_PASSWORD}}@db"),
        ]
    )
    assert got == {"DSN": True, "SLIPWAY_PG_PASSWORD": True}


def test_a_file_is_interpolated_and_keeps_its_mount_path() -> None:
    resolved = resolve(
        [
            var("HOST", "db"),
            var("CONF", "host: {{HOST}}\n", kind="file", mount="/etc/app/conf.yaml"),
        ]
    )
    conf = resolved["CONF"]
    assert (conf.value, conf.mount_path, conf.is_file, conf.via) == (
        "host: db\n",
        "/etc/app/conf.yaml",
        True,
        ["HOST"],
    )
    assert not resolved["HOST"].is_file


def test_an_override_of_a_file_replaces_its_content_at_the_same_path() -> None:
    base = var("CONF", "a", scope="project", kind="file", mount="/etc/conf")
    override = var("CONF", "b", kind="override")
    conf = resolve([base, override])["CONF"]
    assert (conf.value, conf.mount_path, conf.kind, conf.source_id, conf.overridden_id) == (
        "b",
        "/etc/conf",
        "override",
        override.id,
        base.id,
    )


def test_an_alias_of_a_file_is_an_environment_variable() -> None:
    resolved = resolve(
        [var("CONF", "a", kind="file", mount="/etc/conf"), var("C", "CONF", kind="alias")]
    )
    assert (resolved["C"].value, resolved["C"].mount_path) == ("a", None)


def test_provenance_names_the_winner_and_the_path() -> None:
    project_a = var("A", "p", scope="project")
    env_a = var("A", "e", scope="environment")
    b = var("B", "{{C}}-{{A}}", scope="project")
    c = var("C", "A", kind="alias")
    resolved = resolve([project_a, env_a, b, c])
    assert (resolved["A"].source_scope, resolved["A"].source_id) == ("environment", env_a.id)
    assert (resolved["B"].source_scope, resolved["B"].kind, resolved["B"].via) == (
        "project",
        "value",
        ["C", "A"],
    )
    assert resolved["C"].via == ["A"] and resolved["C"].overridden_id is None


def test_the_masked_view_hides_secret_values_and_shows_where_values_come_from() -> None:
    pw = var("PW", "hunter2", secret=True)
    view = masked(
        resolve([pw, var("URL", "u:{{PW}}", scope="project"), var("N", "n", scope="environment")])
    )
    assert [item["key"] for item in view] == ["N", "PW", "URL"]
    assert [item["value"] for item in view] == ["n", None, None]
    assert view[1] == {
        "key": "PW",
        "value": None,
        "is_secret": True,
        "source_scope": "service",
        "source_id": str(pw.id),
        "kind": "value",
        "mount_path": None,
        "via": [],
        "overridden_id": None,
    }
    assert "hunter2" not in json.dumps(view)


# --- the save and delete checks ------------------------------------------------------------------


def save_error(existing: list[VariableIn], candidate: VariableIn) -> str:
    with pytest.raises(ResolutionError) as caught:
        check_can_save(existing=existing, candidate=candidate)
    return caught.value.code


def test_save_accepts_a_resolvable_set() -> None:
    existing = [var("A", "a", scope="project")]
    check_can_save(existing=existing, candidate=var("A", "b", kind="override"))
    check_can_save(existing=existing, candidate=var("A", "c"))  # same key, narrower scope
    check_can_save(existing=existing, candidate=var("B", "{{A}}"))


def test_save_refuses_duplicates_in_one_scope_but_not_the_update_of_itself() -> None:
    a = var("A", "a")
    assert save_error([a], var("A", "b")) == "DUPLICATE_KEY"
    check_can_save(existing=[a], candidate=a.model_copy(update={"value": "b"}))


def test_save_refuses_built_ins() -> None:
    built = builtin("SLIPWAY_X", "x")
    assert save_error([], builtin("SLIPWAY_Y", "y")) == "BUILT_IN_READ_ONLY"
    assert save_error([built], var("SLIPWAY_X", "y", id=built.id)) == "BUILT_IN_READ_ONLY"


@pytest.mark.parametrize(
    ("existing", "candidate", "code"),
    [
        ([], var("SLIPWAY_X"), "RESERVED_KEY"),
        ([], var("A B"), "INVALID_KEY"),
        ([], var("A", "o", kind="override"), "OVERRIDE_TARGET_MISSING"),
        ([var("A", "B", kind="alias")], var("B", "{{A}}"), "VARIABLE_CYCLE"),
        ([], var("A", "MISSING", kind="alias"), "ALIAS_TARGET_MISSING"),
        ([var("B", "{{A}}")], var("A", "{{{{A}}{{C}}"), "INTERPOLATION_MISSING"),
        (
            [var("F", "", kind="file", mount="/f")],
            var("G", "", kind="file", mount="/f"),
            "MOUNT_PATH_CONFLICT",
        ),
    ],
)
def test_save_refuses_what_breaks_the_set(
    existing: list[VariableIn], candidate: VariableIn, code: str
) -> None:
    assert save_error(existing, candidate) == code


def test_save_refuses_an_update_that_breaks_a_dependent() -> None:
    a = var("A", "a")
    assert (
        save_error([a, var("B", "{{A}}")], a.model_copy(update={"key": "RENAMED"}))
        == "INTERPOLATION_MISSING"
    )


def test_save_is_not_blocked_by_an_older_problem_and_can_repair_it() -> None:
    broken = [var("DB", "SLIPWAY_PG_DATABASE_URL", kind="alias")]  # the database was deleted
    check_can_save(existing=broken, candidate=var("OTHER", "x"))
    check_can_save(existing=broken, candidate=broken[0].model_copy(update={"is_secret": True}))
    check_can_save(
        existing=broken, candidate=broken[0].model_copy(update={"kind": "value", "value": "pg://"})
    )


def test_delete_refuses_a_variable_still_needed() -> None:
    base = var("A", "a", scope="project")
    for dependent in (
        var("B", "A", kind="alias"),
        var("B", "{{A}}"),
        var("A", "o", kind="override"),
    ):
        with pytest.raises(ResolutionError) as caught:
            check_can_delete(existing=[base, dependent], variable_id=base.id)
        assert (caught.value.code, caught.value.key) == ("VARIABLE_IN_USE", "A")


def test_delete_accepts_a_variable_nobody_needs_and_refuses_built_ins() -> None:
    shadowed, winner, built = (
        var("A", "p", scope="project"),
        var("A", "s"),
        builtin("SLIPWAY_X", "x"),
    )
    check_can_delete(existing=[shadowed, winner, var("B", "{{A}}")], variable_id=shadowed.id)
    check_can_delete(existing=[winner], variable_id=uuid4())
    with pytest.raises(ResolutionError, match="built in"):
        check_can_delete(existing=[built], variable_id=built.id)


# --- properties ---------------------------------------------------------------------------------

LITERAL = st.text(alphabet="abcxyz -:/", max_size=5)


@st.composite
def same_key_stacks(draw: st.DrawFn) -> list[VariableIn]:
    """Several keys, each defined at a random non-empty set of scopes; narrower ones may be
    overrides (they always have something to override)."""
    variables = []
    for key in draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, unique=True)):
        scopes = draw(st.lists(st.sampled_from(SCOPES), min_size=1, unique=True))
        broadest = min(scopes, key=SCOPES.index)
        for scope in scopes:
            kind = "value" if scope == broadest else draw(st.sampled_from(["value", "override"]))
            variables.append(var(key, draw(LITERAL), scope=scope, kind=kind))
    return draw(st.permutations(variables))


@FAST
@given(same_key_stacks())
def test_property_the_narrowest_scope_wins(variables: list[VariableIn]) -> None:
    resolved = resolve(variables)
    for key in {v.key for v in variables}:
        narrowest = max((v for v in variables if v.key == key), key=lambda v: SCOPES.index(v.scope))
        assert (resolved[key].value, resolved[key].source_id) == (narrowest.value, narrowest.id)


POOL = ["A", "B", "C", "D", "SLIPWAY_X", "MISSING"]


@st.composite
def template(draw: st.DrawFn, names: list[str]) -> str:
    parts = draw(
        st.lists(
            st.one_of(LITERAL, st.sampled_from(names).map(lambda n: f"{{{{{n}}}}}")), max_size=4
        )
    )
    return "".join(parts)


@st.composite
def anything(draw: st.DrawFn) -> list[VariableIn]:
    """Arbitrary sets, broken ones included: collisions, overrides, aliases, files, secrets."""
    variables = [builtin("SLIPWAY_X", "built", secret=draw(st.booleans()))]
    for i in range(draw(st.integers(0, 7))):
        kind = draw(st.sampled_from(["value", "alias", "override", "file"]))
        value = draw(st.sampled_from(POOL)) if kind == "alias" else draw(template(POOL))
        variables.append(
            VariableIn(
                id=UUID(int=i + 1),
                scope=draw(st.sampled_from(SCOPES)),
                key=draw(st.sampled_from(POOL[:4])),
                kind=kind,
                value=value,
                is_secret=draw(st.booleans()),
                mount_path=f"/etc/{draw(st.sampled_from('fg'))}" if kind == "file" else None,
            )
        )
    return variables


def outcome(variables: list[VariableIn]) -> Any:
    try:
        return {key: r.model_dump() for key, r in resolve(variables).items()}
    except ResolutionError as error:
        return (
            error.code,
            error.key,
            error.message,
            [p.identity for p in find_problems(variables)],
        )


@FAST
@given(st.data())
def test_property_resolution_is_deterministic_and_ignores_input_order(data: st.DataObject) -> None:
    variables = data.draw(anything())
    shuffled = data.draw(st.permutations(variables))
    assert outcome(variables) == outcome(shuffled) == outcome(list(variables))


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, tuple[str, Any]]:
    """V0..Vn-1, each an alias (of one name) or a template; names include two that do not exist."""
    n = draw(st.integers(1, 7))
    names = [f"V{i}" for i in range(n + 2)]
    nodes: dict[str, tuple[str, Any]] = {}
    for name in names[:n]:
        if draw(st.integers(0, 3)) == 0:
            nodes[name] = ("alias", draw(st.sampled_from(names)))
        else:
            parts = draw(
                st.lists(
                    st.one_of(
                        LITERAL.map(lambda s: ("lit", s)),
                        st.sampled_from(names).map(lambda s: ("ref", s)),
                    ),
                    max_size=4,
                )
            )
            nodes[name] = ("value", parts)
    return nodes


def edges(node: tuple[str, Any]) -> set[str]:
    kind, body = node
    return {body} if kind == "alias" else {name for part, name in body if part == "ref"}


def expected_value(nodes: dict[str, tuple[str, Any]], name: str) -> str:
    kind, body = nodes[name]
    if kind == "alias":
        return expected_value(nodes, body)
    return "".join(text if part == "lit" else expected_value(nodes, text) for part, text in body)


@FAST
@given(graphs())
def test_property_random_graphs_resolve_iff_acyclic_and_complete(
    nodes: dict[str, tuple[str, Any]],
) -> None:
    variables = [
        var(
            name,
            body
            if kind == "alias"
            else "".join(t if p == "lit" else f"{{{{{t}}}}}" for p, t in body),
            kind=kind,
        )
        for name, (kind, body) in nodes.items()
    ]
    complete = all(edges(node) <= nodes.keys() for node in nodes.values())
    try:
        graphlib.TopologicalSorter({name: edges(node) for name, node in nodes.items()}).prepare()
        acyclic = True
    except graphlib.CycleError:
        acyclic = False
    if complete and acyclic:
        resolved = resolve(variables)
        for name in nodes:
            assert resolved[name].value == expected_value(nodes, name)
            assert not LEFTOVER.search(resolved[name].value)
    else:
        error = error_of(variables)
        allowed = ({"INTERPOLATION_MISSING", "ALIAS_TARGET_MISSING"} if not complete else set()) | (
            {"VARIABLE_CYCLE"} if not acyclic else set()
        )
        assert error.code in allowed


@st.composite
def with_secrets(draw: st.DrawFn) -> list[VariableIn]:
    """Always resolvable (references only point backwards); secret literals carry a marker that
    plain literals cannot spell."""
    variables = [builtin("SLIPWAY_TOKEN", "SECRET-token", secret=True)]
    for i in range(draw(st.integers(1, 8))):
        names = [v.key for v in variables]
        secret = draw(st.booleans())
        literal = st.just("SECRET-" + str(i)) if secret else LITERAL
        kind = draw(st.sampled_from(["value", "alias", "file"]))
        if kind == "alias":
            value = draw(st.sampled_from(names))
        else:
            refs = st.sampled_from(names).map(lambda n: f"{{{{{n}}}}}")
            value = "".join(draw(st.lists(st.one_of(literal, refs), max_size=4)))
        variables.append(
            var(
                f"V{i}",
                value,
                kind=kind,
                secret=secret,
                mount=f"/etc/v{i}" if kind == "file" else None,
            )
        )
    return variables


@FAST
@given(with_secrets())
def test_property_the_masked_view_never_contains_a_secret(variables: list[VariableIn]) -> None:
    resolved: dict[str, Resolved] = resolve(variables)
    view = masked(resolved)
    assert len(view) == len(variables)
    assert all(item["value"] is None for item in view if item["is_secret"])
    assert "SECRET" not in json.dumps(view)
    assert all(
        item["value"] == resolved[item["key"]].value for item in view if not item["is_secret"]
    )
