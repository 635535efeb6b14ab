"""Kafka subscribers of the gateway service (thin: decode, call a use case in the inbox
transaction).
"""
