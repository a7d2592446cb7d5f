-- Every instance keeps API key verifications in memory. When something such a
-- verification depends on changes — a key's revocation, expiry, role, allow-list or
-- replacement, an app's allow-list, a role's permissions, an owner's status — a
-- statement-level trigger sends NOTIFY keyward_keys, and each instance's listener
-- drops its cache (core::keys::listen_for_changes). The writes of "last used" touch
-- none of these columns, so they notify nothing.
create function keyward_notify_keys() returns trigger language plpgsql as $$
begin
    perform pg_notify('keyward_keys', '');
    return null;
end
$$;

create trigger api_keys_changed
    after insert or delete or update of revoked_at, expires_at, role_id, networks, replaced_by, owner_id, app_id
    on api_keys for each statement execute function keyward_notify_keys();
create trigger apps_changed
    after delete or update of name, networks
    on apps for each statement execute function keyward_notify_keys();
create trigger role_permissions_changed
    after insert or update or delete
    on role_permissions for each statement execute function keyward_notify_keys();
create trigger users_changed
    after delete or update of status, email
    on users for each statement execute function keyward_notify_keys();
