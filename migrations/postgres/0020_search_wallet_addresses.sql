-- The trigram index behind wallet searches covered the wallets' whole JSON text, so every key
-- name of every wallet ("network", "withdrawal_fee", …) gave trigrams that every crypto account
-- shares, and each account written had to be added to those huge posting lists: cycle 1 of the
-- sync (every account new) ran at a quarter of its speed. What is searched is the addresses
-- (`search.main_wallet_address.like`, free text): the index now covers them only, joined by `"`
-- (a needle holding `"` is never narrowed, so no match spans two addresses). The narrowing still
-- lets in every row Rust would accept; Rust decides (docs/store.md, "Searching").
CREATE FUNCTION coffer_wallet_addresses(w text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(string_agg(e ->> 'address', '"'), '')
    FROM jsonb_array_elements(w::jsonb) AS e
$$;
DROP INDEX accounts_search_wallets;
CREATE INDEX accounts_search_wallets
    ON accounts USING gin (coffer_fold(coffer_wallet_addresses(wallets)) gin_trgm_ops)
    WHERE NOT closed;
