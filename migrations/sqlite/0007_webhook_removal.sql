-- A webhook URL can be removed from its app. The row stays (messages name it by id and
-- their history shows it), marked removed: it is no longer offered, new messages cannot
-- name it, and a message still waiting to be sent to it fails instead. Registering the
-- same URL again brings it back with a new secret.
alter table webhook_endpoints add column removed_at integer;
