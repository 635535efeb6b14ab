-- A build of a private repository over ssh: the organization's SSH key, sealed with the
-- transport key bound to the build's id (as git_token_sealed), and the host keys to check.
SET LOCAL lock_timeout = '5s';

ALTER TABLE builds ADD COLUMN git_ssh_key_sealed text;
ALTER TABLE builds ADD COLUMN git_known_hosts text;
