-- Victim information that always arrives: every notice and thread message is stored where the app reads it and
-- linked to its outbox rows (message_key), so staff can see whether it was pushed, is waiting for the end of the
-- quiet hours, or is not pushed because of her channel; notices without an owner go to the agency's queue and
-- staff notices travel by a signed webhook.

-- A notice or a message that is deliberately not pushed (her channel is not the app, the case policy says no)
-- is 'not_pushed'; ``push_detail`` says why. It stays readable in the app either way.
ALTER TABLE victim_notices DROP CONSTRAINT victim_notices_push_status_check;
ALTER TABLE victim_notices ADD CONSTRAINT victim_notices_push_status_check
    CHECK (push_status IN ('pending', 'enqueued', 'not_pushed'));
ALTER TABLE victim_notices ADD COLUMN push_detail text;
ALTER TABLE victim_notices ADD COLUMN urgency text NOT NULL DEFAULT 'important'
    CHECK (urgency IN ('safety', 'important', 'update'));

ALTER TABLE case_messages DROP CONSTRAINT case_messages_push_status_check;
ALTER TABLE case_messages ADD CONSTRAINT case_messages_push_status_check
    CHECK (push_status IN ('not_needed', 'pending', 'enqueued', 'not_pushed'));
ALTER TABLE case_messages ADD COLUMN push_detail text;
-- The outbox message key of the push that carries this message (its own id for a thread message; the alert
-- change's key for an operator's message to the victim).
ALTER TABLE case_messages ADD COLUMN message_key uuid;
ALTER TABLE case_messages ADD COLUMN alert_id uuid REFERENCES alerts (id);

-- A staff notice for a case without a case director belongs to an agency's queue (staff_id null, agency set).
ALTER TABLE staff_notices ADD COLUMN agency text;
CREATE INDEX staff_notices_queue ON staff_notices (agency, created_at) WHERE staff_id IS NULL;

-- Staff notices are delivered by webhook; a daily digest names no single case.
ALTER TABLE outbox ALTER COLUMN case_id DROP NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_recipient_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_recipient_check
    CHECK (recipient IN ('victim', 'police', 'supplier', 'system', 'staff'));
ALTER TABLE outbox DROP CONSTRAINT outbox_channel_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check
    CHECK (channel IN ('push', 'sms', 'police_webhook', 'supplier_webhook', 'timer', 'staff_webhook'));
CREATE INDEX outbox_message ON outbox (message_key);

-- A one-off promise ("we'll call you back by Friday") has no period: it ends when the contact is made.
ALTER TABLE contact_agreements ALTER COLUMN every_days DROP NOT NULL;

-- "How to reach" in the victim's language ({"nl": "…", "en": "…"}); how_to_reach stays the default text.
ALTER TABLE case_assignments ADD COLUMN how_to_reach_i18n jsonb NOT NULL DEFAULT '{}';

-- The notice before an order ends is sent once per end date; an extension (a new end) starts anew.
CREATE INDEX orders_ending ON orders (valid_until) WHERE let_go_at IS NULL;
