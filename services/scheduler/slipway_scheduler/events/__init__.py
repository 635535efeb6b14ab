"""Kafka subscribers of the scheduler service (thin: decode, call a use case in the inbox
transaction).
"""
