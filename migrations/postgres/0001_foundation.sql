-- Foundation: users, server-side sessions, the audit log with its hash chain.
create table users (
    id bigint generated always as identity primary key,
    email text not null,
    display_name text not null,
    password_hash text not null,
    status text not null check (status in ('invited', 'active', 'disabled')),
    role text not null,
    last_login_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index users_email_key on users (email);

-- id_hash: SHA-256 of the session ID; the ID itself is only in the user's cookie.
create table sessions (
    id_hash text primary key,
    user_id bigint references users (id) on delete cascade,
    data text not null,
    expires_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index sessions_user_id_idx on sessions (user_id);
create index sessions_expires_at_idx on sessions (expires_at);

create table audit_events (
    id bigint generated always as identity primary key,
    seq bigint not null,
    occurred_at bigint not null,
    actor_type text not null,
    actor_id text,
    action text not null,
    target text,
    ip text,
    user_agent text,
    outcome text not null,
    details text not null,
    prev_hash text not null,
    hash text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index audit_events_seq_key on audit_events (seq);
create index audit_events_occurred_at_idx on audit_events (occurred_at);

-- The head of the chain: one row, updated first in each audit transaction so that
-- concurrent writers take turns and the chain never forks.
create table audit_chain (
    id bigint primary key check (id = 1),
    seq bigint not null,
    last_hash text not null,
    created_at bigint not null,
    updated_at bigint not null
);
insert into audit_chain (id, seq, last_hash, created_at, updated_at)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);
