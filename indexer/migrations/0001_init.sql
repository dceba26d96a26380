-- CapaCloud indexer schema, portable between SQLite and PostgreSQL.
-- Raw layer: append-only, the contract's events as the chain carried them.
-- Derived layer: rebuilt from the raw layer (`capacloud-indexer rebuild`), never from the chain.
-- Amounts are decimal TEXT (u128 does not fit BIGINT); addresses and hashes 0x-hex TEXT.

CREATE TABLE cursor (
    id BIGINT PRIMARY KEY,
    genesis_hash TEXT NOT NULL,
    contract TEXT NOT NULL,
    first_block BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL
);

CREATE TABLE events (
    block_number BIGINT NOT NULL,
    event_index BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    extrinsic_index BIGINT,
    topics TEXT NOT NULL,
    data TEXT NOT NULL,
    kind TEXT,
    job_id BIGINT,
    PRIMARY KEY (block_number, event_index)
);
CREATE INDEX events_job ON events (job_id);

CREATE TABLE jobs (
    job_id BIGINT PRIMARY KEY,
    state TEXT,
    renter TEXT NOT NULL,
    provider TEXT,
    tasks BIGINT NOT NULL,
    escrow TEXT NOT NULL,
    created_block BIGINT NOT NULL,
    created_index BIGINT NOT NULL,
    ended_block BIGINT,
    ended_index BIGINT,
    row_json TEXT NOT NULL
);
CREATE INDEX jobs_created ON jobs (created_block, created_index);
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE accounts (
    account TEXT PRIMARY KEY,
    stake TEXT NOT NULL,
    slashed TEXT NOT NULL,
    slashes BIGINT NOT NULL,
    provider_payouts TEXT NOT NULL,
    verifier_fees TEXT NOT NULL,
    jobs_settled BIGINT NOT NULL,
    row_json TEXT NOT NULL
);

CREATE TABLE offers (
    offer_id BIGINT PRIMARY KEY,
    provider TEXT NOT NULL,
    gpu_class BIGINT NOT NULL,
    price_per_unit TEXT NOT NULL,
    benchmark_score BIGINT NOT NULL,
    active BIGINT NOT NULL,
    listed_block BIGINT NOT NULL,
    listed_index BIGINT NOT NULL,
    row_json TEXT NOT NULL
);

CREATE TABLE prices (
    block_number BIGINT NOT NULL,
    event_index BIGINT NOT NULL,
    gpu_class BIGINT NOT NULL,
    price TEXT NOT NULL,
    value TEXT NOT NULL,
    price_index TEXT NOT NULL,
    PRIMARY KEY (block_number, event_index)
);
