-- Login throttling that strangers cannot turn into a lockout, and invitations bound to the
-- invited address (issue 10, flaws 2 and 10).

-- Emails are stored in their one normalized form (trimmed, lowercased): rows written before kept
-- the local part's case. The unique index was already on lower(email), so this cannot collide.
UPDATE users SET email = lower(email) WHERE email <> lower(email);
UPDATE invitations SET email = lower(email) WHERE email <> lower(email);
UPDATE login_attempts SET email = lower(email) WHERE email <> lower(email);

-- The client addresses each account signed in from: failures from them count only against
-- themselves, so other addresses' failures never lock the owner out (domain/login_throttle.py).
CREATE TABLE login_addresses (
    email              text        NOT NULL,
    address            text        NOT NULL,
    last_succeeded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email, address)
);

-- The SHA-256 of the invitation's single-use link token (the token itself is only mailed to
-- the invitee or shown once to the inviter).
ALTER TABLE invitations ADD COLUMN token_sha256 text;
-- Invitations pending from before had no token: nobody could prove the address for them, so
-- they end here and the inviter invites again (a new link).
UPDATE invitations SET status = 'revoked' WHERE status = 'pending';
