"""The catalog service: owns clusters, projects, environments, services, variables, stages and
deployment rules.
"""
