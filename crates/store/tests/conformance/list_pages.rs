//! `Store::list_page` against core's engine: over random accounts, filters, sorts, scopes and
//! page sizes, paging through the store gives exactly the pages `coffer_core::query::list`
//! computes over every account, cursors included (core's engine is the definition).

use coffer_core::query::{
    self, BalanceRange, FieldOp, FieldSearch, Filter, Query, SearchField, SortField, SortKey,
    SortSpec,
};
use coffer_core::rates::{Rate, RateTable};
use coffer_core::{Account, BalanceType, Currency, Status, Wallet};
use coffer_store::{Scope, Store};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;

use super::{customer, meta};

/// Random data sets, and queries per data set.
const SETS: usize = 24;
const QUERIES: usize = 12;
const CUSTOMERS: [&str; 3] = ["c0", "c1", "C2"];
const PROVIDERS: [&str; 2] = ["p1", "P-2"];
// Registry codes (one mixed case), an unknown code; ids mix case, digits, punctuation and a
// non-ASCII letter (byte order), LIKE's wildcards, a space, and the two characters whose lower
// case is ASCII (KELVIN SIGN, DOTTED CAPITAL I: searches narrowed in SQL must still find them).
const CURRENCIES: [&str; 5] = ["EUR", "EURe", "BTC", "USDC", "ZZZ"];
const ID_CHARS: &str = "aAb0_-.é% k\u{212A}\u{130}i";

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(ID_CHARS.chars().collect::<Vec<_>>()),
        1..=max,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn balance() -> impl Strategy<Value = Decimal> {
    // Few distinct values, so sorts by balance have ties, scales differ (1 vs 1.00); wide ones,
    // so text order and numeric order differ; and millionths.
    prop_oneof![
        2 => (-3i64..=3, 0u32..=2).prop_map(|(m, s)| Decimal::new(m * 10i64.pow(s), s)),
        2 => (-1_000_000i64..=1_000_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s)),
        // Millionths: at USDC's tiny rate different balances round to one value.
        3 => (-5i64..=5).prop_map(|m| Decimal::new(m, 6)),
    ]
}

#[derive(Debug, Clone)]
struct Row {
    customer: usize,
    provider: usize,
    pid: String,
    currency: usize,
    is_crypto: bool,
    status: usize,
    active: bool,
    balance: Decimal,
    balance_type: usize,
    address: Option<String>,
    iban: Option<String>,
}

fn row() -> impl Strategy<Value = Row> {
    (
        (
            0..CUSTOMERS.len(),
            0..PROVIDERS.len(),
            text(4),
            0..CURRENCIES.len(),
        ),
        (
            any::<bool>(),
            0..Status::ALL.len(),
            any::<bool>(),
            balance(),
            0..BalanceType::ALL.len(),
        ),
        (proptest::option::of(text(5)), proptest::option::of(text(5))),
    )
        .prop_map(
            |(
                (customer, provider, pid, currency),
                (is_crypto, status, active, balance, balance_type),
                (address, iban),
            )| Row {
                customer,
                provider,
                pid,
                currency,
                is_crypto,
                status,
                active,
                balance,
                balance_type,
                address,
                iban,
            },
        )
}

fn account(r: &Row) -> Account {
    let provider = PROVIDERS[r.provider];
    let mut a = super::account(
        CUSTOMERS[r.customer],
        provider,
        &r.pid,
        CURRENCIES[r.currency],
        "0",
        0,
    );
    a.is_crypto = r.is_crypto;
    a.status = Status::ALL[r.status];
    a.active = r.active;
    a.balance = r.balance;
    a.balance_type = BalanceType::ALL[r.balance_type];
    a.iban = r.iban.clone();
    a.wallets = r
        .address
        .iter()
        .map(|address| Wallet {
            network: "ethereum".into(),
            address: address.clone(),
            tag: None,
            mainnet: None,
            network_name: None,
            withdrawal_fee: None,
            withdrawal_min: None,
            deposit_min: None,
        })
        .collect();
    a
}

fn filter() -> impl Strategy<Value = Filter> {
    let field = (0..4usize, 0..4usize, text(2)).prop_map(|(f, op, v)| FieldSearch {
        field: [
            SearchField::Id,
            SearchField::MainWalletAddress,
            SearchField::Iban,
            SearchField::Currency,
        ][f],
        op: match op {
            0 | 1 => FieldOp::Like(v),
            2 => FieldOp::Eq(v),
            _ => FieldOp::In(vec![v, "b".into()]),
        },
    });
    (
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::collection::vec(0..CURRENCIES.len(), 0..=2),
            proptest::collection::vec(0..Status::ALL.len(), 0..=2),
        ),
        (
            proptest::collection::vec(0..PROVIDERS.len(), 0..=1),
            proptest::option::of(balance()),
            proptest::option::of(balance()),
            proptest::collection::vec(field, 0..=2),
            proptest::option::of(text(2)),
            proptest::collection::vec(0..BalanceType::ALL.len(), 0..=1),
        ),
    )
        .prop_map(
            |((is_crypto, active, cur, st), (pr, gte, lt, fields, text, bt))| Filter {
                is_crypto,
                active,
                currencies: cur.iter().map(|i| Currency::new(CURRENCIES[*i])).collect(),
                statuses: st.iter().map(|i| Status::ALL[*i]).collect(),
                providers: pr.iter().map(|i| PROVIDERS[*i].to_owned()).collect(),
                balance_types: bt.iter().map(|i| BalanceType::ALL[*i]).collect(),
                balance: BalanceRange {
                    gte,
                    lt,
                    ..BalanceRange::default()
                },
                fields,
                text,
            },
        )
}

fn sort() -> impl Strategy<Value = SortSpec> {
    let fields: Vec<SortField> = SortField::ALL
        .into_iter()
        .filter(|f| *f != SortField::BalanceInBase)
        .collect();
    proptest::collection::vec((proptest::sample::select(fields), any::<bool>()), 0..=3).prop_map(
        |keys| {
            SortSpec::new(
                keys.into_iter()
                    .map(|(field, descending)| SortKey { field, descending })
                    .collect(),
            )
        },
    )
}

#[derive(Debug)]
struct Ask {
    filter: Filter,
    sort: SortSpec,
    limit: u32,
    scope: Scope,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        filter(),
        sort(),
        1u32..=6,
        proptest::option::of(proptest::sample::subsequence(CUSTOMERS.to_vec(), 0..=2)),
    )
        .prop_map(|(filter, sort, limit, scope)| Ask {
            filter,
            sort,
            limit,
            scope: scope.map_or(Scope::All, |ids| {
                Scope::Customers(ids.into_iter().map(str::to_owned).collect())
            }),
        })
}

fn draw<S: Strategy>(runner: &mut TestRunner, s: &S) -> S::Value {
    s.new_tree(runner).expect("a value").current()
}

/// Stores a random data set: every (customer, provider) pair's accounts in one snapshot, and
/// some accounts of a first snapshot left out of the second (closed, so never listed).
async fn store_set(s: &dyn Store, rows: &[Row], gone: &[Row]) {
    for c in CUSTOMERS {
        s.create_customer(&customer(c, &[])).await.unwrap();
    }
    for (ci, c) in CUSTOMERS.iter().enumerate() {
        for (pi, p) in PROVIDERS.iter().enumerate() {
            let mine = |rs: &[Row]| -> Vec<Account> {
                let mut out: Vec<Account> = Vec::new();
                for a in rs
                    .iter()
                    .filter(|r| r.customer == ci && r.provider == pi)
                    .map(account)
                {
                    if !out.iter().any(|o| o.id == a.id) {
                        out.push(a);
                    }
                }
                out
            };
            let open = mine(rows);
            let first: Vec<Account> = open
                .iter()
                .cloned()
                .chain(
                    mine(gone)
                        .into_iter()
                        .filter(|g| !open.iter().any(|o| o.id == g.id)),
                )
                .collect();
            s.save_snapshot(&meta(c, p, 0), &first).await.unwrap();
            s.save_snapshot(&meta(c, p, 1), &open).await.unwrap();
        }
    }
}

/// Rates into EUR: a tiny one (balances round together), a large one, USD as a target; `ZZZ`
/// has none (unconverted, sorted last).
fn rates() -> RateTable {
    let mut t = RateTable::new(Currency::new("EUR"));
    for (c, v) in [
        ("USD", "0.9"),
        ("BTC", "60000.123456789"),
        ("USDC", "0.0000001234567"),
        ("EURe", "1"),
    ] {
        let rate = Rate::manual(
            Currency::new(c),
            Currency::new("EUR"),
            super::d(v),
            super::t(0),
        );
        t.insert(rate).unwrap();
    }
    t
}

/// `value_page` (sorted by `balance_in_base` first) against core, as [`list_pages_match_core`].
pub async fn value_pages_match_core(s: &dyn Store) {
    let mut runner = runner();
    // More rows than the plain list's test, so a currency's walk meets ties past a page.
    let rows = proptest::collection::vec(row(), 30..90);
    let table = rates();
    // Half the questions unfiltered, so ties of many accounts of a currency meet a page's end.
    let value_ask =
        (ask(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(mut a, desc, usd, all)| {
            if all {
                a.filter = Filter::default();
            }
            let mut keys = vec![SortKey {
                field: SortField::BalanceInBase,
                descending: desc,
            }];
            keys.extend(a.sort.keys().iter().copied());
            a.sort = SortSpec::new(keys);
            (a, usd.then(|| Currency::new("USD")))
        });
    let mut exact = 0;
    for _ in 0..SETS {
        let rows = draw(&mut runner, &rows);
        store_set(s, &rows, &[]).await;
        for _ in 0..QUERIES {
            let (ask, target) = draw(&mut runner, &value_ask);
            exact += check_value(s, &ask, target, &table).await;
        }
        for c in CUSTOMERS {
            s.delete_customer(c).await.unwrap();
        }
    }
    assert!(
        exact > SETS * QUERIES / 2,
        "only {exact} answered from the store"
    );
}

/// Pages through core and through `value_page`; 1 when the store answered every page.
async fn check_value(
    s: &dyn Store,
    ask: &Ask,
    target: Option<Currency>,
    table: &RateTable,
) -> usize {
    let every = s
        .list_accounts(&ask.scope, &Filter::default())
        .await
        .unwrap();
    let totals = s.totals(&ask.scope, &ask.filter).await.unwrap();
    let currencies: Vec<Currency> = totals
        .by_currency
        .iter()
        .map(|t| t.currency.clone())
        .collect();
    let mut q = Query {
        filter: ask.filter.clone(),
        sort: ask.sort.clone(),
        limit: ask.limit,
        currency: target.clone(),
        ..Query::default()
    };
    let target = target.unwrap_or_else(|| table.base().clone());
    for page in 0..=every.len() {
        let want = query::list(&every, &q, table).unwrap();
        let after = q.cursor.as_ref().map(|c| c.key());
        let Some(window) = coffer_store::value_page(
            s,
            &ask.scope,
            &q.filter,
            &q.sort,
            after,
            table,
            &target,
            &currencies,
            ask.limit as usize + 1,
        )
        .await
        .unwrap() else {
            return 0;
        };
        let mut got = query::list(&window, &q, table).unwrap();
        got.matched = want.matched;
        assert_eq!(got, want, "page {page} of {ask:?} into {target}");
        let Some(next) = want.next_cursor else {
            return 1;
        };
        q.cursor = Some(query::Cursor::decode(&next, &q.sort).unwrap());
    }
    panic!("cursors loop: {ask:?}");
}

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    )
}

pub async fn list_pages_match_core(s: &dyn Store) {
    let mut runner = runner();
    let rows = proptest::collection::vec(row(), 0..40);
    let gone = proptest::collection::vec(row(), 0..4);
    let table = RateTable::new(Currency::new("EUR"));
    for _ in 0..SETS {
        let (rows, gone) = (draw(&mut runner, &rows), draw(&mut runner, &gone));
        store_set(s, &rows, &gone).await;
        for _ in 0..QUERIES {
            let ask = draw(&mut runner, &ask());
            check(s, &ask, &table).await;
        }
        for c in CUSTOMERS {
            s.delete_customer(c).await.unwrap();
        }
    }
}

/// Pages through core (over every account in scope) and through the store side by side.
async fn check(s: &dyn Store, ask: &Ask, table: &RateTable) {
    let every = s
        .list_accounts(&ask.scope, &Filter::default())
        .await
        .unwrap();
    let mut q = Query {
        filter: ask.filter.clone(),
        sort: ask.sort.clone(),
        limit: ask.limit,
        ..Query::default()
    };
    let mut pages = 0;
    loop {
        let want = query::list(&every, &q, table).unwrap();
        let after = q.cursor.as_ref().map(|c| c.key());
        let window = s
            .list_page(
                &ask.scope,
                &q.filter,
                &q.sort,
                after,
                ask.limit as usize + 1,
            )
            .await
            .unwrap();
        let mut got = query::list(&window, &q, table).unwrap();
        got.matched = want.matched;
        assert_eq!(got, want, "page {pages} of {ask:?}");
        let Some(next) = want.next_cursor else {
            return;
        };
        q.cursor = Some(query::Cursor::decode(&next, &q.sort).unwrap());
        pages += 1;
        assert!(pages <= every.len(), "cursors loop: {ask:?}");
    }
}
