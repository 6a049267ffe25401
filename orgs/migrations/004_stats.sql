-- Users by region, birth year and sex: a rollup kept up to date from identity's facts (identity.stats), so the
-- statistics never scan or decrypt people. `stats_cursor` remembers how far the rollup has read.
CREATE TABLE user_counts (
    region_code text NOT NULL,
    birth_year int NOT NULL,          -- 0 when unknown
    gender text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (region_code, birth_year, gender)
);

CREATE TABLE stats_cursor (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    id uuid NOT NULL
);
