"""Conversation statistics: rollups kept by a timer, six read endpoints (``statistics.md``)."""
