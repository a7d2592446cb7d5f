-- Panel security: organisation settings and sign-in throttling.

-- One row per settings group; value is JSON written and read by the application.
create table settings (
    name text primary key,
    value text not null,
    created_at bigint not null,
    updated_at bigint not null
);

-- Sign-in throttling: one row per scope (an account from an address, an account, an
-- address). failures counts attempts in the current window; locked_until is the soft
-- lock (Unix seconds, 0 when none) that the next attempt must wait for.
create table sign_in_throttle (
    scope text primary key,
    failures bigint not null,
    locked_until bigint not null,
    last_attempt_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);
