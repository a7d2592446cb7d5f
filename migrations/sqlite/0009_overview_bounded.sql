-- The overview reads a user's newest active keys, counts them (up to a cap) and lists
-- those expiring soon: each walks an index, whatever the number of keys the user holds.
create index api_keys_owner_created_idx on api_keys (owner_id, created_at, id);
-- Active keys of an owner by expiry; holds every column the count reads.
create index api_keys_owner_active_idx on api_keys (owner_id, revoked_at, expires_at, kind);
