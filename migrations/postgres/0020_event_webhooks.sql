-- Event webhooks (core::messages::events): which key events each registered webhook URL
-- of an app receives, one row per URL and event.
create table event_subscriptions (
    id bigint generated always as identity primary key,
    webhook_id bigint not null references webhook_endpoints (id),
    event text not null,
    created_by bigint references users (id) on delete set null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index event_subscriptions_webhook_event_key on event_subscriptions (webhook_id, event);
create index event_subscriptions_event_idx on event_subscriptions (event);

-- The events' outbox: one row per event and subscribed URL, written in the transaction
-- of the change it reports, delivered by the outbox worker with the claim, lease and
-- back-off of message webhooks. event_id (evt_…) is the same for every URL one event
-- goes to, and the receiver's key to drop a repeated delivery.
create table event_deliveries (
    id bigint generated always as identity primary key,
    event_id text not null,
    webhook_id bigint not null references webhook_endpoints (id),
    event text not null,
    payload text not null,
    status text not null check (status in ('queued', 'sending', 'sent', 'failed')),
    attempts bigint not null,
    next_attempt_at bigint,
    lease_until bigint,
    last_error text,
    sent_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index event_deliveries_event_webhook_key on event_deliveries (event_id, webhook_id);
create index event_deliveries_status_idx on event_deliveries (status, next_attempt_at);
