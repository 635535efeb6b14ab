"""Kafka subscribers of the builder service (thin: decode, call a use case in the inbox
transaction).
"""
