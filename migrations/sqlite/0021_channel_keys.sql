-- Channel keys (core::channels): kind = 'channel' keys of one channel (email, rcs,
-- whatsapp), what they may do (key_events: 'send', 'status', comma-separated), and,
-- when their channel's policy makes them revealable, the secret sealed with the master
-- key (XChaCha20-Poly1305, bound to the key id). REST keys leave all three null.
alter table api_keys add column channel text;
alter table api_keys add column key_events text;
alter table api_keys add column secret_sealed text;
create index api_keys_channel_idx on api_keys (channel, id) where channel is not null;
