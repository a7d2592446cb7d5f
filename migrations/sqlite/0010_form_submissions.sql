-- One answer per rendered form (core::infra::submissions): a create form's token is
-- claimed by its first submission; a replay (a double click, a resent post) is refused
-- and told what the first one made. Rows older than a day are pruned.
create table form_submissions (
    token_hash text primary key,
    user_id integer not null,
    made text,
    created_at integer not null,
    updated_at integer not null
);
create index form_submissions_created_idx on form_submissions (created_at);
create index form_submissions_user_idx on form_submissions (user_id, created_at);
