-- Contacts on calls (issue 16, item 8; 0022 added contact_id): a call's counterpart in E.164,
-- the caller's number of an inbound call, the callee's of an outbound one, as the app normalised
-- it (kalimera/phones.py, as the contacts' numbers are). Telephony's from_number and to_number
-- stay as sent; NULL when there is no number or it is not a valid one (anonymous, a SIP
-- address). A conversation's contact is the tenant's contact whose contact_no equals it.
ALTER TABLE kalimera_conversations ADD COLUMN contact_number varchar(16);
CREATE INDEX kalimera_conversations_contact_number_idx
    ON kalimera_conversations (tenant_id, contact_number) WHERE contact_number IS NOT NULL;

-- The links are made from both sides: a call finds its contact when its number is written
-- (the start report, the first turn that brings it), a contact finds its calls when it is
-- created or its number changes (kalimera_link_contacts). Neither side sees the other's
-- uncommitted row, so they take one lock per tenant: shared by a call before it looks its
-- contact up (and before it locks its conversation row), exclusive by a contact's change before
-- it links, held to the commit. Whichever commits second sees the first's row.
CREATE FUNCTION kalimera_lock_contact_numbers(tenant uuid, exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(hashtext('kalimera_contact_numbers'), hashtext(tenant::text));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(
            hashtext('kalimera_contact_numbers'), hashtext(tenant::text));
    END IF;
END
$$;

-- Link the tenant's calls to the contacts that now hold their numbers: the calls whose number
-- is one of `numbers` or whose contact is one of `contacts` (a contact whose number changed
-- lets go of the calls of its old number). One statement for a whole import batch. Returns how
-- many calls changed.
CREATE FUNCTION kalimera_link_contacts(tenant uuid, contacts bigint[], numbers text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM kalimera_lock_contact_numbers(tenant, true);
    -- A statement after the lock: its snapshot holds every call committed before it.
    UPDATE kalimera_conversations AS c SET contact_id = k.id
      FROM (SELECT c2.id AS conversation_id,
                   (SELECT k2.id FROM kalimera_contacts k2
                     WHERE k2.tenant_id = tenant AND k2.contact_no = c2.contact_number) AS id
              FROM kalimera_conversations c2
             WHERE c2.tenant_id = tenant
               AND (c2.contact_number = ANY(numbers) OR c2.contact_id = ANY(contacts))) AS k
     WHERE c.tenant_id = tenant AND c.id = k.conversation_id
       AND c.contact_id IS DISTINCT FROM k.id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
