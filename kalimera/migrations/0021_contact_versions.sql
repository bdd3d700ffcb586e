-- A contact's version, from 1, one more with every change: its ETag, so a console's edit carries
-- If-Match (412 when someone changed the contact since it was read) and a re-read carries
-- If-None-Match (304 when nothing changed). A column, not updated_at: two changes may share a
-- transaction's timestamp, never a version.
ALTER TABLE kalimera_contacts ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
