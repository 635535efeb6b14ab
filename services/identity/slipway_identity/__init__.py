"""The identity service: owns users, organizations, members, roles, API tokens and the audit log."""
