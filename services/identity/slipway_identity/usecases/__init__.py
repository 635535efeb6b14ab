"""Use cases of the identity service: each takes its connection (the caller owns the
transaction), validates with the domain, writes through ``db.queries`` and the outbox."""
