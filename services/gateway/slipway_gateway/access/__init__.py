"""Keeping the gateway's access projection current, and deciding who a request comes from."""
