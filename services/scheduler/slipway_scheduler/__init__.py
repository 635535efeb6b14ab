"""The scheduler service: owns schedules, timers, git webhook deliveries, previews and outbound
webhook deliveries.
"""
