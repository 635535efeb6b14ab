"""Kafka subscribers of the catalog service (thin: decode, call a use case in the inbox
transaction).
"""
