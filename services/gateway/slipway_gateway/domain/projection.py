"""The gateway's in-memory projection of access state (memberships, roles, tokens, sessions,
signing keys), fed by the identity snapshot and ``identity.access.v1`` events.

Every entity carries the ``version`` it had when published; an update applies only when newer.
So applying the snapshot and the events in any interleaving, any number of times, converges to
identity's state (a removed membership is kept as a tombstone for that reason).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slipway_gateway.domain.policy import CustomGrants, ProjectGrant, Standing
from slipway_gateway.domain.principal import Principal, TokenPrincipal, UserPrincipal


@dataclass
class _Versioned:
    version: int
    data: dict[str, Any]


@dataclass
class AccessProjection:
    organizations: dict[uuid.UUID, _Versioned] = field(default_factory=dict)
    memberships: dict[tuple[uuid.UUID, uuid.UUID], _Versioned] = field(default_factory=dict)
    custom_roles: dict[uuid.UUID, _Versioned] = field(default_factory=dict)
    tokens_by_id: dict[uuid.UUID, _Versioned] = field(default_factory=dict)
    tokens_by_hash: dict[str, uuid.UUID] = field(default_factory=dict)
    revoked_sessions: dict[uuid.UUID, datetime] = field(default_factory=dict)
    signing_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_version: int = -1
    loaded: bool = False

    # --- applying state

    def apply(self, event_type: str, data: dict[str, Any]) -> None:
        handler = _HANDLERS.get(event_type)
        if handler is not None:
            handler(self, data)

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for org in snapshot["organizations"]:
            self._organization(org)
        for membership in snapshot["memberships"]:
            self._membership(membership)
        for role in snapshot["custom_roles"]:
            self._custom_role(role)
        for token in snapshot["api_tokens"]:
            self._api_token(token)
        for session in snapshot["revoked_sessions"]:
            self._session_revoked(session)
        self._signing_keys(snapshot["signing_keys"])
        self.loaded = True

    def _organization(self, data: dict[str, Any]) -> None:
        _put(self.organizations, uuid.UUID(data["organization_id"]), data)

    def _membership(self, data: dict[str, Any]) -> None:
        key = (uuid.UUID(data["organization_id"]), uuid.UUID(data["user_id"]))
        _put(self.memberships, key, data)

    def _custom_role(self, data: dict[str, Any]) -> None:
        _put(self.custom_roles, uuid.UUID(data["role_id"]), data)

    def _api_token(self, data: dict[str, Any]) -> None:
        token_id = uuid.UUID(data["token_id"])
        if _put(self.tokens_by_id, token_id, data):
            self.tokens_by_hash[data["token_sha256"]] = token_id

    def _session_revoked(self, data: dict[str, Any]) -> None:
        self.revoked_sessions[uuid.UUID(data["session_id"])] = _parse_time(data["expires_at"])

    def _signing_keys(self, data: dict[str, Any]) -> None:
        if data["version"] > self.keys_version:
            self.keys_version = data["version"]
            self.signing_keys = {k["kid"]: k for k in data["keys"]}

    # --- reading

    def verification_key(self, kid: str) -> dict[str, Any] | None:
        key = self.signing_keys.get(kid)
        return key["jwk"] if key is not None and key["status"] != "revoked" else None

    def session_revoked(self, session_id: uuid.UUID) -> bool:
        return session_id in self.revoked_sessions

    def token(self, sha256: str) -> TokenPrincipal | None:
        token_id = self.tokens_by_hash.get(sha256)
        entry = self.tokens_by_id.get(token_id) if token_id else None
        if entry is None or entry.data["revoked"]:
            return None
        data = entry.data
        org = uuid.UUID(data["organization_id"])
        if not self.organization_exists(org):
            return None
        custom = data.get("custom_role_id")
        return TokenPrincipal(
            token_id=uuid.UUID(data["token_id"]),
            organization_id=org,
            name=data["name"],
            role=data.get("role"),
            custom_role_id=uuid.UUID(custom) if custom else None,
        )

    def organization_exists(self, org_id: uuid.UUID) -> bool:
        entry = self.organizations.get(org_id)
        return entry is not None and not entry.data.get("deleted", False)

    def standing(self, principal: Principal, org_id: uuid.UUID) -> Standing | None:
        """The principal's role in ``org_id``, or None when it may not even know the org."""
        if not self.organization_exists(org_id):
            return None
        if isinstance(principal, TokenPrincipal):
            if principal.organization_id != org_id:
                return None
            return self._standing(principal.role, principal.custom_role_id)
        assert isinstance(principal, UserPrincipal)
        entry = self.memberships.get((org_id, principal.user_id))
        if entry is None or entry.data.get("removed"):
            return None
        custom = entry.data.get("custom_role_id")
        return self._standing(entry.data.get("role"), uuid.UUID(custom) if custom else None)

    def _standing(self, role: str | None, custom_role_id: uuid.UUID | None) -> Standing | None:
        if role is not None:
            return Standing(role=role)
        entry = self.custom_roles.get(custom_role_id) if custom_role_id else None
        if entry is None or entry.data.get("deleted"):
            return Standing(custom=CustomGrants())  # a member, with no grants at all
        return Standing(custom=_grants(entry.data))

    def prune_sessions(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        for sid in [s for s, exp in self.revoked_sessions.items() if exp <= now]:
            del self.revoked_sessions[sid]


def _put(table: dict[Any, _Versioned], key: Any, data: dict[str, Any]) -> bool:
    current = table.get(key)
    if current is not None and current.version >= data["version"]:
        return False
    table[key] = _Versioned(data["version"], data)
    return True


def _grants(data: dict[str, Any]) -> CustomGrants:
    projects = {
        uuid.UUID(p["project_id"]): ProjectGrant(
            is_admin=p.get("is_admin", False), environments=dict(p.get("environments", {}))
        )
        for p in data.get("projects", [])
    }
    clusters = {uuid.UUID(c["cluster_id"]): c["permission"] for c in data.get("clusters", [])}
    return CustomGrants(projects=projects, clusters=clusters)


def _parse_time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


_HANDLERS = {
    "identity.OrganizationChanged": AccessProjection._organization,
    "identity.MembershipChanged": AccessProjection._membership,
    "identity.CustomRoleChanged": AccessProjection._custom_role,
    "identity.ApiTokenChanged": AccessProjection._api_token,
    "identity.SessionRevoked": AccessProjection._session_revoked,
    "identity.SigningKeysChanged": AccessProjection._signing_keys,
}
