"""The builder's use cases: commands that queue or cancel builds, and running a build."""
