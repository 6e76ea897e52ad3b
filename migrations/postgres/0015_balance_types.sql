-- What each stored balance means (issue 17): `available` or `unspecified`, as the provider's
-- adapter declares it. Rows written before this say `unspecified` (nobody said so then; the
-- migration cannot tell which configured provider instance is of which kind) until their next
-- fetch writes the declared type. A constant default adds the column without rewriting the table.
ALTER TABLE accounts ADD COLUMN balance_type TEXT NOT NULL DEFAULT 'unspecified'
    CHECK (balance_type IN ('available', 'unspecified'));
ALTER TABLE account_versions ADD COLUMN balance_type TEXT NOT NULL DEFAULT 'unspecified'
    CHECK (balance_type IN ('available', 'unspecified'));
