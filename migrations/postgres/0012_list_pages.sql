-- The unified list reads its pages from the store in core's order (issue 21): one index per
-- order the list walks, over open accounts only. Text keys are `COLLATE "C"` (byte order, as
-- Rust compares strings and as the list's SQL asks, whatever the database's collation), and
-- each ends with the id tie-break, so a keyset page is one index range scan.
CREATE INDEX accounts_list_id ON accounts (id COLLATE "C") WHERE NOT closed;
CREATE INDEX accounts_list_balance ON accounts (balance, id COLLATE "C") WHERE NOT closed;
CREATE INDEX accounts_list_currency
    ON accounts ((upper(currency)) COLLATE "C", id COLLATE "C") WHERE NOT closed;
-- The sort by converted value (balance_in_base) merges one walk per currency in balance order.
CREATE INDEX accounts_list_currency_balance
    ON accounts (currency, balance, id COLLATE "C") WHERE NOT closed;

-- Field searches (`like`) and free text: a case-insensitive substring, decided exactly in Rust
-- (Unicode lower-casing). PostgreSQL first narrows the rows with ILIKE through trigram indexes,
-- on a folding that can only let more rows in: the two characters whose Rust lower case is
-- ASCII (KELVIN SIGN → k, DOTTED CAPITAL I → i…) folded to it, and for the IBAN every character
-- Rust counts as whitespace removed (free text also matches an IBAN without its spaces).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE FUNCTION coffer_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT translate(t, U&'\212A\0130', 'ki') $$;
CREATE FUNCTION coffer_fold_compact(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT translate(t, U&'\212A\0130\0009\000A\000B\000C\000D\0020\0085\00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\2028\2029\202F\205F\3000', 'ki')
$$;
CREATE INDEX accounts_search_id ON accounts USING gin (coffer_fold(id) gin_trgm_ops)
    WHERE NOT closed;
CREATE INDEX accounts_search_wallets ON accounts USING gin (coffer_fold(wallets) gin_trgm_ops)
    WHERE NOT closed;
CREATE INDEX accounts_search_iban ON accounts USING gin (coffer_fold_compact(iban) gin_trgm_ops)
    WHERE NOT closed AND iban IS NOT NULL;
