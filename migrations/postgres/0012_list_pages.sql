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
