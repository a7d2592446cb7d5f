-- Panel security: organisation settings and sign-in throttling.

-- One row per settings group; value is JSON written and read by the application.
create table settings (
    name text primary key,
    value text not null,
    created_at integer not null,
    updated_at integer not null
);

-- Sign-in throttling: one row per scope (an account from an address, an account, an
-- address). failures counts attempts in the current window; locked_until is the soft
-- lock (Unix seconds, 0 when none) that the next attempt must wait for.
create table sign_in_throttle (
    scope text primary key,
    failures integer not null,
    locked_until integer not null,
    last_attempt_at integer not null,
    created_at integer not null,
    updated_at integer not null
);

-- TOTP: the seed encrypted with the master key (XChaCha20-Poly1305, bound to the user),
-- confirmed once the user entered a code; last_step is the last accepted time step, so
-- a code is accepted once.
create table user_totp (
    user_id integer primary key references users (id) on delete cascade,
    secret_enc text not null,
    confirmed_at integer,
    last_step integer not null,
    created_at integer not null,
    updated_at integer not null
);

-- Single-use recovery codes, stored as SHA-256 (they are long random strings).
create table recovery_codes (
    id integer primary key autoincrement,
    user_id integer not null references users (id) on delete cascade,
    code_hash text not null,
    used_at integer,
    created_at integer not null,
    updated_at integer not null
);
create unique index recovery_codes_code_hash_key on recovery_codes (code_hash);
create index recovery_codes_user_id_idx on recovery_codes (user_id);

-- Email sign-in codes: bound to one sign-in attempt (a random id kept in that browser's
-- session), stored as SHA-256, valid until expires_at, burnt after tries_left wrong
-- tries, used once.
create table email_codes (
    id integer primary key autoincrement,
    user_id integer not null references users (id) on delete cascade,
    attempt_id text not null,
    code_hash text not null,
    expires_at integer not null,
    tries_left integer not null,
    used_at integer,
    created_at integer not null,
    updated_at integer not null
);
create index email_codes_attempt_id_idx on email_codes (attempt_id);

-- Invitations: a single-use link (token kept as SHA-256) valid until expires_at, for an
-- invited user row (status 'invited', no password yet).
create table invitations (
    id integer primary key autoincrement,
    user_id integer not null references users (id) on delete cascade,
    token_hash text not null,
    invited_by integer references users (id) on delete set null,
    expires_at integer not null,
    accepted_at integer,
    created_at integer not null,
    updated_at integer not null
);
create unique index invitations_token_hash_key on invitations (token_hash);
create index invitations_user_id_idx on invitations (user_id);
