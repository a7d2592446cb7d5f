-- Key lifecycle (core::keys::lifecycle).
-- disabled_at: a job disabled the key after Settings > Keys' days of disuse; it is
-- refused with key_disabled until its owner or an administrator enables it again.
-- enabled_at: when the key last began to work again (enabled after being disabled, or
-- approved): disuse is counted from the latest of its creation, its last use and this.
-- pending_at: Settings > Keys required approval when the key was made; it is refused
-- with key_pending until approved_by (not its owner) approves it at approved_at.
alter table api_keys add column disabled_at integer;
alter table api_keys add column enabled_at integer;
alter table api_keys add column pending_at integer;
alter table api_keys add column approved_by integer references users (id) on delete set null;
alter table api_keys add column approved_at integer;
-- The approval queue: pending keys, oldest first.
create index api_keys_pending_idx on api_keys (pending_at) where pending_at is not null;
