-- Apps and API keys.

-- networks: the REST IP allow-list, one CIDR per line (empty: any address).
create table apps (
    id bigint generated always as identity primary key,
    name text not null,
    name_key text not null,
    networks text not null,
    created_by bigint references users (id) on delete set null,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index apps_name_key_key on apps (name_key);

-- A key: its public id (safe to log), the SHA-256 of its secret (never the secret), the
-- last four characters as a hint. expires_at null: never. A rolled key points at its
-- replacement, and its expires_at is the grace deadline.
create table api_keys (
    id bigint generated always as identity primary key,
    key_id text not null,
    kind text not null check (kind in ('rest', 'sdk', 'channel')),
    app_id bigint not null references apps (id),
    environment text not null check (environment in ('live', 'test')),
    owner_id bigint references users (id),
    name text not null,
    role_id bigint references roles (id),
    secret_hash text not null,
    last4 text not null,
    networks text not null,
    expires_at bigint,
    revoked_at bigint,
    revoked_by bigint references users (id) on delete set null,
    revoke_reason text,
    rolled_from text,
    replaced_by text,
    last_used_at bigint,
    last_used_ip text,
    created_at bigint not null,
    updated_at bigint not null
);
create unique index api_keys_key_id_key on api_keys (key_id);
create unique index api_keys_secret_hash_key on api_keys (secret_hash);
create index api_keys_owner_id_idx on api_keys (owner_id);
create index api_keys_app_id_idx on api_keys (app_id);
