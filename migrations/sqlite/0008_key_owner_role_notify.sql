-- PostgreSQL only (its key-change trigger now also fires on a user's role change);
-- SQLite runs one instance, whose own cache generation covers it. Same file name in
-- both folders, so the migration histories stay alike.
select 1;
