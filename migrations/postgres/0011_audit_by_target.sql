-- A key's page lists its history from the audit log, newest first: an index walk however
-- long the log is.
create index audit_events_target_idx on audit_events (target, seq);
