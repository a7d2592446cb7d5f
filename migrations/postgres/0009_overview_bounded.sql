-- The overview reads a user's newest active keys and those expiring soon: each walks an
-- index in the order it shows, whatever the number of keys the user holds.
create index api_keys_owner_created_idx on api_keys (owner_id, created_at, id);
create index api_keys_owner_expires_idx on api_keys (owner_id, expires_at);
