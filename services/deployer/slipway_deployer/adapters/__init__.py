"""The deployer's adapters: what talks to the world outside its domain (the database, ...)."""
