//! (f) the unified list at a million accounts (issue 21): an admin's `GET /v2/accounts` pages,
//! p50 per page for pages 1 and 20, and the resident memory while paging through everything.
//!
//! The accounts are written straight into the tables of `migrations/postgres` in set-based
//! statements (as the sync scenario fills its customers): 100,000 customers × 10 accounts, half
//! at each provider, eight currencies, one in twenty suspended, balances up to 100,000.00, a
//! wallet address on every P100 account and an IBAN on every bank account. The totals rollup and
//! the covered-customers count are then rebuilt from them, and a manual rate set for every
//! currency into EUR.

use std::time::{Duration, Instant};

use clap::Parser;
use coffer_sim::SimConfig;
use coffer_store::PgStore;
use tokio::runtime::Handle;

use crate::harness;
use crate::load::{ms, quantile};
use crate::setup::{self, ADMIN_KEY};

#[derive(Debug, Parser)]
pub struct ListArgs {
    /// Accounts (ten per customer).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: u64,
    /// Requests measured per (question, page).
    #[arg(long, default_value_t = 9)]
    pub requests: usize,
    /// Page size of the walk through every account (the memory measure); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub walk_limit: u32,
}

/// The questions of the goals, each with its goal.
const QUESTIONS: &[(&str, &str)] = &[
    ("", "< 20 ms"),
    ("sort=balance", "< 20 ms"),
    ("sort=-balance", "< 20 ms"),
    ("sort=currency", "< 20 ms"),
    ("stack=currency", "< 20 ms"),
    ("stack=currency&is_crypto=true", "< 20 ms"),
    ("status=suspended&balance_gt=1000", "< 20 ms"),
    ("search.currency=BTC", "< 20 ms"),
    ("provider=bank", "< 20 ms"),
    ("is_crypto=true", "< 20 ms"),
    ("active=false", "< 20 ms"),
    ("balance_gt=500&balance_lt=600", "< 20 ms"),
    ("sort=-balance_in_base", "< 50 ms"),
    ("sort=balance_in_base", "< 50 ms"),
    ("search.main_wallet_address.like=0xabc", "< 100 ms"),
    ("search=gen-0000", "< 100 ms"),
];

/// Fills the tables in four statements; see the module doc.
pub(crate) async fn fill(url: &str, accounts: u64) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let n = i64::try_from(accounts)?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO customers (id, name, created_at)
         SELECT 'list-' || lpad(i::text, 6, '0'), NULL, now()
         FROM generate_series(0, ($1 + 9) / 10 - 1) AS i",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO snapshots (customer_id, provider_id, provider_customer_ref, fetched_at)
         SELECT c.id, p, NULL, now() FROM customers c, unnest(ARRAY['p100', 'bank']) AS p",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO accounts (id, customer_id, provider_id, provider_account_id, currency,
             is_crypto, status, active, balance, wallets, iban, fetched_at, rollup_shard)
         SELECT pr || ':' || md5(i::text), 'list-' || lpad((i / 10)::text, 6, '0'), pr,
                md5(i::text),
                (ARRAY['EUR', 'USD', 'GBP', 'CHF', 'BTC', 'ETH', 'USDC', 'EURe'])[1 + (i / 2) % 8],
                (i / 2) % 8 >= 4,
                CASE WHEN i % 20 = 7 THEN 'suspended' ELSE 'active' END, i % 20 <> 7,
                round((random() * 100000)::numeric, 2),
                CASE WHEN pr = 'p100'
                     THEN '[{\"network\":\"ethereum\",\"address\":\"0x' || md5('w' || i) || '\"}]'
                     ELSE '[]' END,
                CASE WHEN pr = 'bank' THEN 'DE' || lpad(i::text, 20, '0') END,
                now(), ((i / 10) % 16)::smallint
         FROM generate_series(0, $1 - 1) AS i,
              LATERAL (SELECT CASE WHEN i % 2 = 0 THEN 'p100' ELSE 'bank' END AS pr) AS p",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("VACUUM ANALYZE accounts")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    PgStore::connect(url).await?.rebuild_totals_rollup().await?;
    Ok(())
}

/// A manual rate into EUR for every currency [`fill`] writes.
pub(crate) async fn set_rates(store: &dyn coffer_store::Store) -> anyhow::Result<()> {
    let rates = [
        ("USD", "0.9"),
        ("GBP", "1.15"),
        ("CHF", "1.05"),
        ("BTC", "60000"),
        ("ETH", "3000"),
        ("USDC", "0.92"),
        ("EURe", "1"),
    ]
    .into_iter()
    .map(|(c, v)| Ok((coffer_core::Currency::new(c), v.parse()?)))
    .collect::<anyhow::Result<std::collections::BTreeMap<_, _>>>()?;
    store
        .set_manual_rates(
            &coffer_core::Currency::new("EUR"),
            &rates,
            chrono::Utc::now(),
            &coffer_store::Actor::system(),
        )
        .await?;
    Ok(())
}

pub(crate) fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// One page: its time and body.
    async fn page(
        &self,
        query: &str,
        cursor: Option<&str>,
    ) -> anyhow::Result<(Duration, serde_json::Value)> {
        let mut url = format!("{}/v2/accounts?limit=50&{query}", self.base);
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let t = Instant::now();
        let r = self
            .http
            .get(&url)
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await?;
        let took = t.elapsed();
        anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
        Ok((took, body))
    }

    /// p50 of `n` requests of one page.
    async fn p50(&self, query: &str, cursor: Option<&str>, n: usize) -> anyhow::Result<Duration> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            times.push(self.page(query, cursor).await?.0);
        }
        times.sort();
        Ok(quantile(&times, 0.5))
    }

    /// The cursor of page `page` (1-based): `None` when there are fewer pages.
    async fn cursor_of(&self, query: &str, page: usize) -> anyhow::Result<Option<String>> {
        let mut cursor: Option<String> = None;
        for _ in 1..page {
            let (_, body) = self.page(query, cursor.as_deref()).await?;
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(None),
            }
        }
        Ok(cursor)
    }
}

pub async fn list(url: &str, _client: Handle, args: &ListArgs) -> anyhow::Result<()> {
    let heading = format!("(f) the unified list at {} accounts", args.accounts);
    harness::begin(&heading, url, Some("list"))?;
    let store = harness::database(url, 16).await?;
    let t = Instant::now();
    fill(url, args.accounts).await?;
    // Manual rates for every currency, so the value sort merges eight converted walks.
    set_rates(store.as_ref()).await?;
    println!(
        "filled {} accounts in {:.1} s",
        args.accounts,
        t.elapsed().as_secs_f64()
    );
    let served = harness::serve(url, &store, SimConfig::default(), |_| {}).await?;
    let result = measure(&served.url(), args).await;
    served.finish(result).await
}

/// Pages 1 and 20 of each question, then the walk through everything.
async fn measure(base: &str, args: &ListArgs) -> anyhow::Result<()> {
    let c = Client {
        http: reqwest::Client::new(),
        base: base.to_owned(),
    };
    println!(
        "load average before the requests: {}",
        setup::load_average()
    );
    for (query, goal) in QUESTIONS {
        let first = c.p50(query, None, args.requests).await?;
        let twentieth = match c.cursor_of(query, 20).await? {
            // Cursors are URL-safe base64: no escaping needed.
            Some(cursor) => ms(c.p50(query, Some(&cursor), args.requests).await?),
            None => "(fewer pages)".to_owned(),
        };
        println!(
            "RESULT list `{}`: p50 page 1 {}, page 20 {} (goal {goal})",
            if query.is_empty() { "limit=50" } else { query },
            ms(first),
            twentieth
        );
    }
    if args.walk_limit > 0 {
        walk(&c, args.walk_limit).await?;
    }
    Ok(())
}

/// Pages through every account; the resident memory before, at its peak, and after.
async fn walk(c: &Client, limit: u32) -> anyhow::Result<()> {
    let before = rss();
    let (mut peak, mut seen, mut pages) = (before, 0u64, 0u64);
    let t = Instant::now();
    let mut cursor: Option<String> = None;
    loop {
        let query = format!("limit={limit}");
        let mut url = format!("{}/v2/accounts?{query}", c.base);
        if let Some(cur) = &cursor {
            url.push_str("&cursor=");
            url.push_str(cur);
        }
        let body: serde_json::Value = c
            .http
            .get(&url)
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await?
            .json()
            .await?;
        seen += body["data"].as_array().map_or(0, |d| d.len() as u64);
        pages += 1;
        peak = peak.max(rss());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    println!(
        "RESULT list walk: {seen} accounts in {pages} pages of {limit} in {:.1} s; resident {} before, peak {}, {} after",
        t.elapsed().as_secs_f64(),
        mib(before),
        mib(peak),
        mib(rss())
    );
    Ok(())
}
