"""Events produced by the identity service."""

from __future__ import annotations

import uuid
from datetime import datetime

from slipway_contracts.envelope import EventPayload

USER_TOPIC = "identity.user.v1"
ORGANIZATION_TOPIC = "identity.organization.v1"


class UserSignedUp(EventPayload):
    event_type = "identity.UserSignedUp"
    topic = USER_TOPIC

    user_id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class OrganizationCreated(EventPayload):
    event_type = "identity.OrganizationCreated"
    topic = ORGANIZATION_TOPIC

    organization_id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    created_at: datetime


class OrganizationDeleted(EventPayload):
    event_type = "identity.OrganizationDeleted"
    topic = ORGANIZATION_TOPIC

    organization_id: uuid.UUID
    deleted_at: datetime


PAYLOADS: tuple[type[EventPayload], ...] = (UserSignedUp, OrganizationCreated, OrganizationDeleted)
