-- Apps and API keys.

-- networks: the REST IP allow-list, one CIDR per line (empty: any address).
create table apps (
    id integer primary key autoincrement,
    name text not null,
    name_key text not null,
    networks text not null,
    created_by integer references users (id) on delete set null,
    created_at integer not null,
    updated_at integer not null
);
create unique index apps_name_key_key on apps (name_key);

-- A key: its public id (safe to log), the SHA-256 of its secret (never the secret), the
-- last four characters as a hint. expires_at null: never. A rolled key points at its
-- replacement, and its expires_at is the grace deadline.
create table api_keys (
    id integer primary key autoincrement,
    key_id text not null,
    kind text not null check (kind in ('rest', 'sdk', 'channel')),
    app_id integer not null references apps (id),
    environment text not null check (environment in ('live', 'test')),
    owner_id integer references users (id),
    name text not null,
    role_id integer references roles (id),
    secret_hash text not null,
    last4 text not null,
    -- SDK keys only: they are public (shipped inside client apps), so their value is
    -- kept to be shown to anyone who can view the app. Null for secret keys.
    public_value text,
    networks text not null,
    expires_at integer,
    revoked_at integer,
    revoked_by integer references users (id) on delete set null,
    revoke_reason text,
    rolled_from text,
    replaced_by text,
    last_used_at integer,
    last_used_ip text,
    created_at integer not null,
    updated_at integer not null
);
create unique index api_keys_key_id_key on api_keys (key_id);
create unique index api_keys_secret_hash_key on api_keys (secret_hash);
create index api_keys_owner_id_idx on api_keys (owner_id);
create index api_keys_app_id_idx on api_keys (app_id);

-- Events recorded by SDKs (POST /api/v1/sdk/events).
create table app_events (
    id integer primary key autoincrement,
    app_id integer not null references apps (id),
    key_id text not null,
    name text not null,
    properties text not null,
    created_at integer not null,
    updated_at integer not null
);
create index app_events_app_id_idx on app_events (app_id, created_at);
