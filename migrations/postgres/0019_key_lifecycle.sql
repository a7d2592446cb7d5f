-- Key lifecycle (core::keys::lifecycle).
-- disabled_at: a job disabled the key after Settings > Keys' days of disuse; it is
-- refused with key_disabled until its owner or an administrator enables it again.
-- enabled_at: when the key last began to work again (enabled after being disabled, or
-- approved): disuse is counted from the latest of its creation, its last use and this.
-- pending_at: Settings > Keys required approval when the key was made; it is refused
-- with key_pending until approved_by (not its owner) approves it at approved_at.
alter table api_keys add column disabled_at bigint;
alter table api_keys add column enabled_at bigint;
alter table api_keys add column pending_at bigint;
alter table api_keys add column approved_by bigint references users (id) on delete set null;
alter table api_keys add column approved_at bigint;
-- The approval queue: pending keys, oldest first.
create index api_keys_pending_idx on api_keys (pending_at) where pending_at is not null;
-- Disabling, enabling and approving change what a verification answers: every
-- instance's key cache must drop (0005's trigger, with the new columns).
drop trigger api_keys_changed on api_keys;
create trigger api_keys_changed
    after insert or delete or update of revoked_at, expires_at, role_id, networks, replaced_by, owner_id, app_id, disabled_at, pending_at
    on api_keys for each statement execute function keyward_notify_keys();
