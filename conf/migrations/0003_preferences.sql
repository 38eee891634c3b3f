-- preferences: one JSON document per user.
CREATE TABLE preferences (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    data jsonb NOT NULL DEFAULT '{}'
);
