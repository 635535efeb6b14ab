"""The builder service: owns builds from a git commit to an image in a registry, and the build
cache index.
"""
