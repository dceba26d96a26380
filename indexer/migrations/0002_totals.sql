-- Market-wide totals kept with every batch (one row), so /api/stats and the dashboard read
-- one row instead of scanning every job; and the provider flag the leaderboard filters on.
CREATE TABLE totals (
    id BIGINT PRIMARY KEY,
    stats_json TEXT NOT NULL
);
ALTER TABLE accounts ADD COLUMN registered BIGINT NOT NULL DEFAULT 0;
