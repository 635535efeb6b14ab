"""The deployer's use cases: each takes its connection (the caller owns the transaction)."""
