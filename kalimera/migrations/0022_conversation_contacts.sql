-- Contacts on calls (issue 16, item 8): the contact a conversation was with, when the caller's
-- (inbound) or callee's (outbound) number matches one of the tenant's contacts. Set at ingestion
-- and when a contact is created or its number changes; cleared, never cascaded, when the contact
-- is deleted (the call stays; erasing a contact's calls is an explicit request). The listing
-- filters by it, newest first, and erasure finds a contact's calls through the same index.
ALTER TABLE kalimera_conversations ADD COLUMN contact_id bigint;
ALTER TABLE kalimera_conversations
    ADD CONSTRAINT kalimera_conversations_contact_fkey FOREIGN KEY (tenant_id, contact_id)
        REFERENCES kalimera_contacts (tenant_id, id) ON DELETE SET NULL (contact_id);
CREATE INDEX kalimera_conversations_contact_idx
    ON kalimera_conversations (tenant_id, contact_id, started_at DESC, id)
    WHERE contact_id IS NOT NULL;
