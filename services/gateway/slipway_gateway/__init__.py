"""The gateway service: owns the public HTTP API: authentication, authorization, routing to the
owning services, streaming.
"""
