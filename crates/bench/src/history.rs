//! (e) History: answers at past instants and series over 30 days of history, on PostgreSQL.
//! The history is generated set-based in SQL, as the sync scenario fills its tables: N
//! customers linked to both providers, `accounts` per pair, one observation per pair per day,
//! a version per account on day 0 and for about `change_percent` % of the accounts each later
//! day, provider rates changing hourly and a manual rate changing daily.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use coffer_sim::SimConfig;

use crate::harness;
use crate::load::{ms, quantile};

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Customers, each linked to both providers.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Accounts per customer at each provider (5: 10 per customer).
    #[arg(long, default_value_t = 5)]
    pub accounts_per_provider: i64,
    /// Days of history, ending now.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Share of the accounts that change each day, percent.
    #[arg(long, default_value_t = 10)]
    pub change_percent: i64,
    /// Requests per measured question (sequential); one-customer questions take 4 times more.
    #[arg(long, default_value_t = 5)]
    pub requests: usize,
}

impl Default for HistoryArgs {
    fn default() -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            a: HistoryArgs,
        }
        Wrap::parse_from(["history"]).a
    }
}

/// The accounts' currencies by index at their provider (the last two crypto), and the rates
/// generated for them: provider-reported hourly against the base (EUR), GBP manual daily.
const CURRENCIES: [&str; 5] = ["EUR", "USD", "GBP", "BTC", "ETH"];

/// The history, set-based: a statement per table over `generate_series`. `$1` is the first
/// day's midnight; each pair is observed at its customer's own second of the day.
const OBSERVATIONS: &str =
    "INSERT INTO observations (customer_id, provider_id, fetched_at, rejected)
    SELECT l.customer_id, l.provider,
           $1::timestamptz + d * interval '1 day'
               + (substr(l.customer_id, 6)::int % 86400) * interval '1 second', '[]'
    FROM customer_links l, generate_series(0, $2 - 1) AS d";

const VERSIONS: &str = "INSERT INTO account_versions (customer_id, provider_id, account_id,
        valid_from, closed, provider_account_id, provider_customer_ref, currency, is_crypto,
        status, active, balance, wallets, iban, provider_rate, provider_rate_quote)
    SELECT l.customer_id, l.provider, l.provider || ':' || l.customer_id || '-' || k,
           $1::timestamptz + d * interval '1 day'
               + (substr(l.customer_id, 6)::int % 86400) * interval '1 second',
           false, l.customer_id || '-' || k, NULL, ($5::text[])[k + 1], k >= 3, 'active', true,
           round((abs(hashtext(l.customer_id || l.provider || k || ':' || d)) % 10000000)::numeric
                 / 100, 2),
           '[]', NULL, NULL, NULL
    FROM customer_links l, generate_series(0, $3 - 1) AS k, generate_series(0, $2 - 1) AS d
    WHERE d = 0 OR abs(hashtext(l.customer_id || l.provider || k || '#' || d)) % 100 < $4";

const PROVIDER_RATES: &str =
    "INSERT INTO provider_rate_history (provider, currency, quote, as_of, rate)
    SELECT 'p100', c, 'EUR', $1::timestamptz + h * interval '1 hour',
           round(CASE c WHEN 'BTC' THEN 60000 WHEN 'ETH' THEN 3000 ELSE 1 END
                 * (1 + (abs(hashtext(c || h)) % 1000)::numeric / 10000), 6)
    FROM unnest(ARRAY['USD', 'BTC', 'ETH']) AS c, generate_series(0, $2 * 24 - 1) AS h";

const MANUAL_RATES: &str = "INSERT INTO manual_rate_versions (currency, quote, rate, as_of, key_id)
    SELECT 'GBP', 'EUR', round(1.15 + (d % 7)::numeric / 100, 4),
           $1::timestamptz + d * interval '1 day', NULL
    FROM generate_series(0, $2 - 1) AS d ORDER BY d";

/// The present rate table holds every provider key (PostgreSQL's `rates_at` reads the keys
/// from it) and the manual rate's latest value.
const PRESENT_RATES: &str = "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
    SELECT DISTINCT ON (provider, currency, quote) 'provider', provider, currency, quote, rate,
           as_of FROM provider_rate_history ORDER BY provider, currency, quote, as_of DESC";

const PRESENT_MANUAL: &str = "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
    SELECT 'manual', '', currency, quote, rate, as_of FROM manual_rate_versions
    ORDER BY as_of DESC, id DESC LIMIT 1";

async fn generate(
    url: &str,
    args: &HistoryArgs,
    start: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let currencies: Vec<String> = CURRENCIES.iter().map(|c| (*c).to_owned()).collect();
    for (name, sql) in [
        ("observations", OBSERVATIONS),
        ("account_versions", VERSIONS),
        ("provider_rate_history", PROVIDER_RATES),
        ("manual_rate_versions", MANUAL_RATES),
        ("rates", PRESENT_RATES),
        ("rates (manual)", PRESENT_MANUAL),
    ] {
        let t = Instant::now();
        // Each statement binds the parameters it names; PostgreSQL refuses unused ones.
        let mut q = sqlx::query(sql);
        if sql.contains("$1") {
            q = q.bind(start);
        }
        if sql.contains("$2") {
            q = q.bind(args.days);
        }
        if sql.contains("$3") {
            q = q
                .bind(args.accounts_per_provider)
                .bind(args.change_percent)
                .bind(&currencies);
        }
        let rows = q.execute(&mut conn).await?.rows_affected();
        println!(
            "  {name}: {rows} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    sqlx::query("ANALYZE observations, account_versions, provider_rate_history, manual_rate_versions, rates")
        .execute(&mut conn)
        .await?;
    let sizes: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t, pg_total_relation_size(t::regclass),
                (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' || t, false, true, '')))[1]::text::bigint
         FROM unnest(ARRAY['observations', 'account_versions']) AS t",
    )
    .fetch_all(&mut conn)
    .await?;
    for (t, bytes, rows) in sizes {
        println!(
            "RESULT history bytes: {t}: {rows} rows, {bytes} bytes with indexes, {} bytes per row",
            bytes / rows.max(1)
        );
    }
    Ok(())
}

/// Times `n` sequential GETs of the paths `path(i)` returns; prints p50 and max.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    goal_ms: u64,
    n: usize,
    path: impl Fn(usize) -> String,
) -> anyhow::Result<()> {
    let mut lat = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let url = format!("{base}{}", path(i));
        let (took, body) = harness::timed_get(client, &url, Duration::from_secs(600)).await?;
        lat.push(took);
        bytes = body.len();
    }
    lat.sort();
    let p50 = quantile(&lat, 0.5);
    println!(
        "RESULT history {what}: p50 {} max {} ({n} requests, {bytes} bytes; goal p50 < {goal_ms} ms: {})",
        ms(p50),
        ms(lat[lat.len() - 1]),
        if p50 < Duration::from_millis(goal_ms) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// (e).
pub async fn history(url: &str, args: &HistoryArgs) -> anyhow::Result<()> {
    let heading = "(e) history: answers at past instants and series";
    harness::begin(heading, url, Some("history"))?;
    let n = args.customers;
    let store = harness::database(url, 16).await?;
    let t = Instant::now();
    crate::customers::bulk_customers(url, n).await?;
    println!(
        "inserted {n} customers and {} links in {:.1} s",
        2 * n,
        t.elapsed().as_secs_f64()
    );
    let now = chrono::Utc::now();
    let start = (now - chrono::TimeDelta::days(args.days))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let t = Instant::now();
    generate(url, args, start).await?;
    println!(
        "generated {} days of history in {:.1} s",
        args.days,
        t.elapsed().as_secs_f64()
    );

    // The checkpoints of the all-customer totals, as the server's task builds them (hourly, up
    // to now − settle), timed here so the answers below read them.
    let t = Instant::now();
    let built = store
        .build_checkpoints(
            now - chrono::TimeDelta::seconds(60),
            coffer_server::checkpoints::STEP,
        )
        .await?;
    println!(
        "RESULT history checkpoints: {built} built in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let sim = SimConfig {
        customers: 1,
        ..SimConfig::default()
    };
    let served = harness::serve(url, &store, sim, |config| {
        // One observation per pair per day: a gap is more than two days.
        config.history.max_gap = Some(Duration::from_secs(2 * 86400));
        // An all-customer answer at an instant without a checkpoint reads every account: at
        // full size longer than the default 30 s deadline, which would measure the deadline.
        config.server.request_timeout = Duration::from_secs(900);
    })
    .await?;
    let result = answers(&served.url(), args, (start, now)).await;
    served.finish(result).await
}

/// Answers at instants spread over the window, and series over it, for one customer and for
/// all of them.
async fn answers(
    base: &str,
    args: &HistoryArgs,
    (start, now): (DateTime<Utc>, DateTime<Utc>),
) -> anyhow::Result<()> {
    let n = args.customers;
    let client = reqwest::Client::new();
    let r = args.requests;
    // Instants spread over the window after its first day (every pair observed by then), by
    // a fixed stride: the same instants every run.
    let span = (now - start - chrono::TimeDelta::days(1))
        .num_seconds()
        .max(1);
    let instants: Vec<String> = (0..4 * r)
        .map(|i| {
            let s = (i64::try_from(i).unwrap_or(0) * 2_654_435_761) % span;
            (start + chrono::TimeDelta::days(1) + chrono::TimeDelta::seconds(s))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .collect();
    let customer = |i: usize| format!("sync-{:06}", (i * 7919) % n);
    measure(&client, base, "one customer at=", 5, 4 * r, |i| {
        format!(
            "/v2/accounts/balance?customer_id={}&at={}",
            customer(i),
            instants[i]
        )
    })
    .await?;
    for (what, filter) in [
        ("all customers at=", ""),
        ("all customers at= currency=USD", "&currency=USD"),
        ("all customers at= crypto", "&search.is_crypto=true"),
        ("all customers at= status=active", "&search.status=active"),
        ("all customers at= provider=p100", "&search.provider=p100"),
    ] {
        measure(&client, base, what, 50, r, |i| {
            format!("/v2/accounts/balance?at={}{filter}", instants[i])
        })
        .await?;
    }
    let from =
        (start + chrono::TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    measure(
        &client,
        base,
        "30-point daily series, one customer",
        20,
        4 * r,
        |i| {
            format!(
                "/v2/accounts/balance/history?customer_id={}&from={from}&interval=1d",
                customer(i)
            )
        },
    )
    .await?;
    measure(
        &client,
        base,
        "30-point daily series, all customers",
        200,
        r,
        |_| format!("/v2/accounts/balance/history?from={from}&interval=1d"),
    )
    .await
}
