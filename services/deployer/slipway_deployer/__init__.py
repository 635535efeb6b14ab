"""The deployer service: owns deployment requests, deployments, stage and service runs, environment
status and the runtimes.
"""
