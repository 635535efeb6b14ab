"""Use cases of the catalog service: each takes its connection (the caller owns the
transaction), validates with the domain, writes through ``db.queries``, publishes the entity's
new full state through the outbox and records the audit event."""
