-- PostgreSQL only: triggers that tell every instance to drop its key verification
-- cache (see migrations/postgres/0005_key_change_notify.sql). A SQLite database is
-- served by one instance, which drops its cache itself on every change.
select 1;
