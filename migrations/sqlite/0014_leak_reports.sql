-- Tokens reported as leaked (POST /api/v1/leaks), as the SHA-256 a key is stored by
-- (never the token itself), with the reporter's address. The answer to a report never
-- depends on what matched: a background job (core::keys::leaks) claims the rows and
-- revokes the active keys they name, once across instances.
create table leak_reports (
    id integer primary key autoincrement,
    token_hash text not null,
    reporter_ip text,
    -- A worker holds the row until then (its lease); one that stopped mid-way leaves
    -- it to the next.
    claimed_until integer,
    done_at integer,
    created_at integer not null,
    updated_at integer not null
);
create index leak_reports_pending_idx on leak_reports (done_at, id);
