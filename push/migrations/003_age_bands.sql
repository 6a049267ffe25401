-- Age criteria are identity's age bands (identity.segments.AGE_BANDS), any of several, not a numeric range.
ALTER TABLE messages
    DROP COLUMN segment_age_min,
    DROP COLUMN segment_age_max,
    ADD COLUMN segment_age_bands text[];
