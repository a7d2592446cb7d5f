-- A key does only what its owner may do now, so a change of the owner's role must
-- drop every instance's key cache too (0005's trigger listened to status and email
-- only).
drop trigger users_changed on users;
create trigger users_changed
    after delete or update of status, email, role_id
    on users for each statement execute function keyward_notify_keys();
