-- Foundation: roles, users, server-side sessions, the audit log with its hash chain.
-- Roles: the five built-in ones (fixed ids 1..5, read-only; their permissions are
-- defined in code so that a new permission reaches Owner and Admin without a migration)
-- and custom ones, whose permissions are rows of role_permissions.
create table roles (
    id integer primary key autoincrement,
    name text not null,
    -- lowercase name: role names are unique case-insensitively
    name_key text not null,
    builtin text check (builtin in ('owner', 'admin', 'developer', 'approver', 'viewer')),
    created_at integer not null,
    updated_at integer not null
);
create unique index roles_name_key_key on roles (name_key);
create unique index roles_builtin_key on roles (builtin);
insert into roles (id, name, name_key, builtin, created_at, updated_at) values
    (1, 'Owner', 'owner', 'owner', 0, 0),
    (2, 'Admin', 'admin', 'admin', 0, 0),
    (3, 'Developer', 'developer', 'developer', 0, 0),
    (4, 'Approver', 'approver', 'approver', 0, 0),
    (5, 'Viewer', 'viewer', 'viewer', 0, 0);

create table role_permissions (
    role_id integer not null references roles (id) on delete cascade,
    permission text not null,
    created_at integer not null,
    updated_at integer not null,
    primary key (role_id, permission)
);

create table users (
    id integer primary key autoincrement,
    email text not null,
    display_name text not null,
    password_hash text not null,
    status text not null check (status in ('invited', 'active', 'disabled')),
    role_id integer not null references roles (id),
    last_login_at integer,
    created_at integer not null,
    updated_at integer not null
);
create unique index users_email_key on users (email);
create index users_role_id_idx on users (role_id);

-- id_hash: SHA-256 of the session ID; the ID itself is only in the user's cookie.
create table sessions (
    id_hash text primary key,
    user_id integer references users (id) on delete cascade,
    data text not null,
    expires_at integer not null,
    created_at integer not null,
    updated_at integer not null
);
create index sessions_user_id_idx on sessions (user_id);
create index sessions_expires_at_idx on sessions (expires_at);

create table audit_events (
    id integer primary key autoincrement,
    seq integer not null,
    occurred_at integer not null,
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
    created_at integer not null,
    updated_at integer not null
);
create unique index audit_events_seq_key on audit_events (seq);
create index audit_events_occurred_at_idx on audit_events (occurred_at);

-- The head of the chain: one row, updated first in each audit transaction so that
-- concurrent writers take turns and the chain never forks.
create table audit_chain (
    id integer primary key check (id = 1),
    seq integer not null,
    last_hash text not null,
    created_at integer not null,
    updated_at integer not null
);
insert into audit_chain (id, seq, last_hash, created_at, updated_at)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);
