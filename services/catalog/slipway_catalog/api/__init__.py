"""HTTP routes of the catalog service (thin: validate, call a use case, answer)."""
