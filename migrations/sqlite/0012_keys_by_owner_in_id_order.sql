-- A Developer's key list walks their own keys newest first (`owner_id = ? order by id
-- desc`): with only an index on owner_id the planner may instead walk every key by id
-- and filter, which reads the whole table when the owner's keys are old or a search
-- matches none of them.
create index api_keys_owner_id_id_idx on api_keys (owner_id, id);
drop index api_keys_owner_id_idx;
