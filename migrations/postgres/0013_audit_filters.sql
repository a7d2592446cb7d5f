-- The audit page filters by who acted, what they did and from where, newest first: each
-- filter an index walk in `seq` order however long the log is.
create index audit_events_actor_idx on audit_events (actor_type, actor_id, seq);
create index audit_events_action_idx on audit_events (action, seq);
create index audit_events_ip_idx on audit_events (ip, seq);
