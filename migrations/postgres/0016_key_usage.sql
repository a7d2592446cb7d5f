-- Usage per key (core::keys::usage): requests per key per UTC hour, accepted ("ok") or
-- refused by code. Counted in memory and added in batches by every instance (an
-- upsert that adds, so two instances' counts for one hour sum). Rows older than 90
-- days are pruned.
create table key_usage (
    key_id text not null,
    hour bigint not null,
    code text not null,
    requests bigint not null,
    primary key (key_id, hour, code)
);
create index key_usage_by_hour on key_usage (hour);
