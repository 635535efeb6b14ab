"""The logs service: owns log lines (partitioned by day), their retention, reading back and
following.
"""
