-- SMS (core::channels::numbers, core::messages, core::infra::sms).
--
-- Sender numbers: E.164 numbers an app sends SMS from, unique in the deployment. Each
-- has one SMS channel key (api_keys.sender names its number), made when the number is
-- added and revoked when it is removed.
--
-- Users may confirm a phone number to receive sign-in codes by SMS.
--
-- Messages gain the `sms` channel, the number they are sent from (sender) and how many
-- recipients a delivery has reached (delivered: a retry goes on from there). SQLite
-- cannot change a CHECK constraint, so the table is rebuilt: copy, drop, rename. The
-- migration runs in a transaction, where foreign keys cannot be turned off, so the rows
-- that point at messages (message_approvals) are set aside first and put back after,
-- and no reference is ever left dangling.

create table sender_numbers (
    id integer primary key autoincrement,
    app_id integer not null references apps (id),
    number text not null,
    created_by integer references users (id) on delete set null,
    created_at integer not null,
    updated_at integer not null
);
create unique index sender_numbers_number_key on sender_numbers (number);
create index sender_numbers_app_id_idx on sender_numbers (app_id);

alter table api_keys add column sender text;
create index api_keys_sender_idx on api_keys (sender) where sender is not null;

create temporary table approvals_kept as
    select id, message_id, approver_id, payload_hash, decision, reason, created_at, updated_at from message_approvals;
delete from message_approvals;

create table messages_new (
    id integer primary key autoincrement,
    message_id text not null,
    app_id integer not null references apps (id),
    channel text not null check (channel in ('email', 'webhook', 'sms')),
    recipients text not null,
    webhook_id integer references webhook_endpoints (id),
    sender text,
    subject text not null,
    body text not null,
    payload_hash text not null,
    status text not null check (status in ('pending_approval', 'approved', 'rejected', 'expired', 'queued', 'sending', 'sent', 'failed')),
    author_id integer not null references users (id),
    created_by_key text,
    approvals_needed integer not null,
    expires_at integer,
    attempts integer not null,
    delivered integer not null default 0,
    next_attempt_at integer,
    lease_until integer,
    last_error text,
    decided_at integer,
    sent_at integer,
    created_at integer not null,
    updated_at integer not null
);
insert into messages_new (id, message_id, app_id, channel, recipients, webhook_id, subject, body, payload_hash,
    status, author_id, created_by_key, approvals_needed, expires_at, attempts, next_attempt_at, lease_until,
    last_error, decided_at, sent_at, created_at, updated_at)
select id, message_id, app_id, channel, recipients, webhook_id, subject, body, payload_hash,
    status, author_id, created_by_key, approvals_needed, expires_at, attempts, next_attempt_at, lease_until,
    last_error, decided_at, sent_at, created_at, updated_at
from messages;
drop table messages;
alter table messages_new rename to messages;
create unique index messages_message_id_key on messages (message_id);
create index messages_status_idx on messages (status, next_attempt_at);
create index messages_author_id_idx on messages (author_id);
insert into message_approvals (id, message_id, approver_id, payload_hash, decision, reason, created_at, updated_at)
    select id, message_id, approver_id, payload_hash, decision, reason, created_at, updated_at from approvals_kept;
drop table approvals_kept;

-- A user's phone number for SMS sign-in codes (E.164), set once confirmed by a code
-- sent to it.
alter table users add column phone text;
alter table users add column phone_confirmed_at integer;
