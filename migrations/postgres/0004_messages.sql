-- Messages, their approvals, and the webhook URLs an admin registered per app.

-- A webhook URL a message may be POSTed to. The signing secret (HMAC-SHA256) is kept
-- sealed with the master key: the delivery worker needs it to sign, and it is shown
-- once to the admin who registers (or regenerates) it.
create table webhook_endpoints (
    id bigint generated always as identity primary key,
    app_id bigint not null references apps (id),
    url text not null,
    secret_sealed text not null,
    created_by bigint references users (id) on delete set null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index webhook_endpoints_app_id_url_key on webhook_endpoints (app_id, url);

-- One message. message_id (msg_…) is public. payload_hash is the SHA-256 of what will
-- be sent (channel, recipients or URL, subject, body); approvals bind to it. author_id
-- is the user who wrote it, also when a key of theirs did (created_by_key).
-- Delivery: attempts, next_attempt_at (back-off), lease_until (a claimed row belongs
-- to one worker until then), last_error.
create table messages (
    id bigint generated always as identity primary key,
    message_id text not null,
    app_id bigint not null references apps (id),
    channel text not null check (channel in ('email', 'webhook')),
    recipients text not null,
    webhook_id bigint references webhook_endpoints (id),
    subject text not null,
    body text not null,
    payload_hash text not null,
    status text not null check (status in ('pending_approval', 'approved', 'rejected', 'expired', 'queued', 'sending', 'sent', 'failed')),
    author_id bigint not null references users (id),
    created_by_key text,
    approvals_needed bigint not null,
    expires_at bigint,
    attempts bigint not null,
    next_attempt_at bigint,
    lease_until bigint,
    last_error text,
    decided_at bigint,
    sent_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index messages_message_id_key on messages (message_id);
create index messages_status_idx on messages (status, next_attempt_at);
create index messages_author_id_idx on messages (author_id);

-- A decision on one payload of a message by one approver. An edit changes the payload
-- hash, so earlier approvals no longer count.
create table message_approvals (
    id bigint generated always as identity primary key,
    message_id bigint not null references messages (id),
    approver_id bigint not null references users (id),
    payload_hash text not null,
    decision text not null check (decision in ('approved', 'rejected')),
    reason text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index message_approvals_once_key on message_approvals (message_id, approver_id, payload_hash);
