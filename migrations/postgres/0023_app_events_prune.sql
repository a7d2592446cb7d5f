-- App events are kept 90 days: the hourly prune finds the old ones by time.
create index app_events_created_at_idx on app_events (created_at);
