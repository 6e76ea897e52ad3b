-- Rate history: the rate table in force at any past instant (GET /v2/rates?at=).
--
-- Provider rates as reported with each observation, a row only when a (provider, currency,
-- quote) changes value (scale included: the rate is served as the provider gave it). The
-- primary key is also the index that finds the latest row of a key at or before an instant
-- (one backward index probe), which both the write ("did it change?") and the read need.
CREATE TABLE provider_rate_history (
    provider  TEXT NOT NULL,
    currency  TEXT NOT NULL,
    quote     TEXT NOT NULL,
    as_of     TIMESTAMPTZ NOT NULL,
    rate      NUMERIC NOT NULL CHECK (coffer_exact_decimal(rate)),
    PRIMARY KEY (provider, currency, quote, as_of)
);

-- Manual rates as versions: each set or change (rate and quote) and each removal (both NULL),
-- with the API key id that made it (NULL: recorded before versioning). `id` orders versions of
-- one instant.
CREATE TABLE manual_rate_versions (
    id        BIGSERIAL PRIMARY KEY,
    currency  TEXT NOT NULL,
    quote     TEXT,
    rate      NUMERIC CHECK (coffer_exact_decimal(rate)),
    as_of     TIMESTAMPTZ NOT NULL,
    key_id    TEXT,
    CHECK ((quote IS NULL) = (rate IS NULL))
);
CREATE INDEX manual_rate_versions_currency ON manual_rate_versions (currency, as_of, id);

-- What is stored now is where history starts.
INSERT INTO provider_rate_history (provider, currency, quote, as_of, rate)
SELECT provider, currency, quote, as_of, rate FROM rates WHERE source = 'provider';
INSERT INTO manual_rate_versions (currency, quote, rate, as_of)
SELECT currency, quote, rate, as_of FROM rates WHERE source = 'manual' ORDER BY currency;
