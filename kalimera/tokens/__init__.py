"""API tokens over the API: a tenant's administrator makes, lists and revokes its tokens."""
