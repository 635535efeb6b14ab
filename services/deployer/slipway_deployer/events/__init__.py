"""Kafka subscribers of the deployer service (thin: decode, call a use case in the inbox
transaction).
"""
