-- Settings > Keys can flag a key reported as leaked instead of revoking it
-- (core::keys::leaks): when it was flagged. A flagged key keeps working and shows a
-- warning on /keys and its page.
alter table api_keys add column leak_flagged_at bigint;
