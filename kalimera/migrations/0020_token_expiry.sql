-- Tokens made over the API (docs/tokens.md): an optional expiry, after which the token answers 401
-- like a revoked one, and the token that made it (NULL for tokens made by the CLI), so an
-- administrator can see where a token came from.
ALTER TABLE kalimera_api_tokens
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN created_by uuid REFERENCES kalimera_api_tokens (id) ON DELETE SET NULL;
