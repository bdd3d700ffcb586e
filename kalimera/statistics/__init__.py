"""Conversation statistics: rollups kept by a timer, five read endpoints (``statistics.md``)."""
