"""Webhooks: a tenant's endpoints, and the signed delivery of its events (docs/webhooks.md)."""
