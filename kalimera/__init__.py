"""Kalimera backend: AI voice agents, contacts, voice ingestion and statistics."""

__version__ = "0.1.0"
