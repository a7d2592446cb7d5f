-- Expiry reminders (core::keys::reminders): when each of a key's two reminders went
-- out (7 days and 1 day before it expires). Set by the statement that claims the key,
-- so one instance sends each reminder once.
alter table api_keys add column reminded_7d_at bigint;
alter table api_keys add column reminded_1d_at bigint;
