"""Kafka subscribers of the identity service (thin: decode, call a use case in the inbox
transaction).
"""
