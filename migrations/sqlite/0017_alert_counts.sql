-- Failed-authentication alerts (core::audit::alerts): failures per subject (a key or an
-- account) per fixed window, added to by every instance with an upsert that returns
-- the new count, so exactly one instance sees the count cross the threshold and sends
-- the alert once per window. Pruned after two days.
create table alert_counts (
    subject text not null,
    window_start bigint not null,
    failures bigint not null,
    primary key (subject, window_start)
);
create index alert_counts_by_window on alert_counts (window_start);
