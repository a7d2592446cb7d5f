-- SMS (core::channels::numbers, core::messages, core::infra::sms).
--
-- Sender numbers: E.164 numbers an app sends SMS from, unique in the deployment. Each
-- has one SMS channel key (api_keys.sender names its number), made when the number is
-- added and revoked when it is removed.
--
-- Users may confirm a phone number to receive sign-in codes by SMS.
--
-- Messages gain the `sms` channel, the number they are sent from (sender) and how many
-- recipients a delivery has reached (delivered: a retry goes on from there).
create table sender_numbers (
    id bigint generated always as identity primary key,
    app_id bigint not null references apps (id),
    number text not null,
    created_by bigint references users (id) on delete set null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index sender_numbers_number_key on sender_numbers (number);
create index sender_numbers_app_id_idx on sender_numbers (app_id);

alter table api_keys add column sender text;
create index api_keys_sender_idx on api_keys (sender) where sender is not null;

alter table messages drop constraint messages_channel_check;
alter table messages add constraint messages_channel_check check (channel in ('email', 'webhook', 'sms'));
alter table messages add column sender text;
alter table messages add column delivered bigint not null default 0;

-- A user's phone number for SMS sign-in codes (E.164), set once confirmed by a code
-- sent to it.
alter table users add column phone text;
alter table users add column phone_confirmed_at bigint;
