"""Conversations: the voice upload, the blob-triggered ingestion and the conversation API."""
