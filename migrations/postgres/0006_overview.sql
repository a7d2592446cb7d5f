-- The overview lists keys that expire soon (a range on expires_at).
create index api_keys_expires_at_idx on api_keys (expires_at);
