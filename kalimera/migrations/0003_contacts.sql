-- Contacts: the people agents call and are called by, per tenant. The id is an integer identity
-- (the seed's contract); tenant_id leads the primary key and every unique constraint.
CREATE TABLE kalimera_contacts (
    tenant_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    first_name varchar(50) NOT NULL CHECK (length(first_name) >= 1),
    last_name varchar(50) NOT NULL CHECK (length(last_name) >= 1),
    -- E.164 (at most 15 digits after the '+'), normalised by the API before it is stored.
    contact_no varchar(20),
    email varchar(100),
    start_datetime timestamptz,
    end_datetime timestamptz,
    language varchar(30) NOT NULL DEFAULT 'English' CHECK (length(language) >= 1),
    voice text NOT NULL DEFAULT 'Male' CHECK (voice IN ('Male', 'Female')),
    status text NOT NULL DEFAULT 'Inbound' CHECK (status IN ('Inbound', 'Outbound')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- NULLs are distinct: any number of contacts without a phone number, one per number.
    CONSTRAINT kalimera_contacts_contact_no_key UNIQUE (tenant_id, contact_no),
    CONSTRAINT kalimera_contacts_end_after_start CHECK (end_datetime >= start_datetime)
);

-- Listing newest first is a backward scan of the primary key (tenant_id, id); the status
-- filter has its own index in the same order.
CREATE INDEX kalimera_contacts_status_idx ON kalimera_contacts (tenant_id, status, id);

-- Search: a case-insensitive substring of the names, phone number or email (trigram GIN; the
-- query also filters by tenant_id, which the primary key serves).
CREATE INDEX kalimera_contacts_search_idx ON kalimera_contacts USING gin (
    (first_name || ' ' || last_name || ' ' || coalesce(contact_no, '') || ' '
        || coalesce(email, '')) gin_trgm_ops
);

-- The CSV import treats a contact without a phone number as already stored when one with the
-- same names and email (case-insensitive) exists; this index answers that question.
CREATE INDEX kalimera_contacts_no_phone_idx ON kalimera_contacts (
    tenant_id, lower(first_name), lower(last_name), lower(coalesce(email, ''))
) WHERE contact_no IS NULL;

CREATE TRIGGER kalimera_contacts_touch BEFORE UPDATE ON kalimera_contacts
    FOR EACH ROW EXECUTE FUNCTION kalimera_touch_row();
