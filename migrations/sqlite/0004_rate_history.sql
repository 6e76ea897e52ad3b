-- Same logical change as postgres/0007: rate history. Rates are exact decimal text and
-- instants fixed-width UTC text (text order is time order), as everywhere in this schema.
CREATE TABLE provider_rate_history (
    provider  TEXT NOT NULL,
    currency  TEXT NOT NULL,
    quote     TEXT NOT NULL,
    as_of     TEXT NOT NULL,
    rate      TEXT NOT NULL,
    PRIMARY KEY (provider, currency, quote, as_of)
);

CREATE TABLE manual_rate_versions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    currency  TEXT NOT NULL,
    quote     TEXT,
    rate      TEXT,
    as_of     TEXT NOT NULL,
    key_id    TEXT,
    CHECK ((quote IS NULL) = (rate IS NULL))
);
CREATE INDEX manual_rate_versions_currency ON manual_rate_versions (currency, as_of, id);

INSERT INTO provider_rate_history (provider, currency, quote, as_of, rate)
SELECT provider, currency, quote, as_of, rate FROM rates WHERE source = 'provider';
INSERT INTO manual_rate_versions (currency, quote, rate, as_of)
SELECT currency, quote, rate, as_of FROM rates WHERE source = 'manual' ORDER BY currency;
