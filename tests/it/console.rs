//! The console (`GET /console`) against the real server and the simulators. Over HTTP: the
//! page and its hashed assets, their caching and the Content-Security-Policy. In headless
//! Chromium: every page loads with no console error and is screenshot under target/; the
//! overview shows the total the API answers for the same key and target; a reader's customer
//! list holds only its customers; a provider outage shows the stale banner.

use crate::browser;
use crate::common;

use coffer_sim::{Fault, P100Error, Provider, Target};
use fantoccini::Locator;

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

async fn app() -> common::TestApp {
    let app = common::spawn(common::Backend::Sqlite, common::Options::default())
        .await
        .unwrap();
    for i in 0..3 {
        app.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
            .await;
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_hashed_assets_are_served_with_a_strict_policy() {
    let app = app().await;
    let page = app
        .client
        .get(format!("{}/console", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    // Every asset the page names carries a hash, and is cached for a year.
    let assets: Vec<&str> = html
        .split("\"/console/assets/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(assets.len(), 3, "{html}");
    for a in &assets {
        let parts: Vec<&str> = a.split('.').collect();
        let hash = parts[parts.len() - 2];
        assert!(
            hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
        let r = app
            .client
            .get(format!("{}/console/assets/{a}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(r.headers().contains_key("content-security-policy"));
    }
    // Nothing in the page or its scripts names another origin.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let missing = app
        .client
        .get(format!("{}/console/assets/app.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "unhashed names are not served");
    app.stop().await;
}

async fn sign_in(b: &browser::Browser, url: &str, key: &str) {
    b.client.goto(&format!("{url}/console")).await.unwrap();
    b.wait_for("#key").await.send_keys(key).await.unwrap();
    b.client
        .find(Locator::Css("#signin-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("body[data-page='overview']").await;
}

/// Opens a page from the navigation (as a user does) and waits until it is drawn.
async fn open(b: &browser::Browser, page: &str) {
    b.client
        .find(Locator::Css(&format!("nav a[href='#/{page}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for(&format!("body[data-page='{page}']")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_a_real_browser() {
    let Some(b) = browser::start().await else {
        return;
    };
    let app = app().await;
    sign_in(&b, &app.url, &app.admin_key).await;
    // The key lives in the tab's session storage only.
    let stored = b
        .eval("return [sessionStorage.getItem('coffer.key'), localStorage.length, document.cookie]")
        .await;
    assert_eq!(stored, serde_json::json!([app.admin_key, 0, ""]));

    // The overview's total is the API's, for the same key and target.
    let api = app.ok("/v2/accounts/balance?stack=currency").await;
    let shown = b.text("#total").await;
    assert_eq!(
        shown,
        format!(
            "{} {}",
            api["total_balance"].as_str().unwrap(),
            api["currency"].as_str().unwrap()
        )
    );
    let r = app
        .put("/v2/rates", serde_json::json!({"rates": {"USD": "0.92"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let api = app
        .ok("/v2/accounts/balance?stack=currency&currency=USD")
        .await;
    b.client
        .goto(&format!("{}/console#/overview?currency=USD", app.url))
        .await
        .unwrap();
    let shown = b.text("#total[data-currency='USD']").await;
    assert_eq!(
        shown,
        format!("{} USD", api["total_balance"].as_str().unwrap())
    );
    b.screenshot("overview").await;

    for page in ["customers", "sync", "history", "rates"] {
        open(&b, page).await;
        let error = b
            .eval("return document.getElementById('error').hidden")
            .await;
        assert_eq!(
            error,
            true,
            "{page} shows an error: {}",
            b.text("#error").await
        );
        b.screenshot(page).await;
    }
    let errors = b.errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // An admin sets a manual rate from the rates page; the table shows it.
    b.wait_for("#rate-currency")
        .await
        .send_keys("GBP")
        .await
        .unwrap();
    b.wait_for("#rate-value")
        .await
        .send_keys("1.1725")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#rate-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::XPath(
            "//table[@id='rates']//td[contains(., '1.1725 EUR')]",
        ))
        .await
        .unwrap();
    let rates = app.ok("/v2/rates").await;
    assert!(
        rates["rates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["currency"] == "GBP" && r["rate"] == "1.1725" && r["source"] == "manual"),
        "{rates}"
    );
    // A refused value is shown as the API's message.
    b.wait_for("#rate-currency")
        .await
        .send_keys("USD")
        .await
        .unwrap();
    b.wait_for("#rate-value")
        .await
        .send_keys("-3")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("#rate-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = b.text("#error:not([hidden])").await;
    let api = app
        .put("/v2/rates", serde_json::json!({"rates": {"USD": "-3"}}))
        .await;
    assert_eq!(api.status, 400);
    assert_eq!(shown, api.body["message"].as_str().unwrap());
    b.log().await;

    // A reader: its customer list holds only its customers.
    b.client
        .find(Locator::Css("#signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let reader = app.reader_key(&["c1"]).await;
    sign_in(&b, &app.url, &reader).await;
    open(&b, "customers").await;
    assert_eq!(b.attrs("[data-customer]", "data-customer").await, ["c1"]);
    b.screenshot("customers-reader").await;
    // Its accounts across both providers, as the API answers them for this key.
    b.client
        .find(Locator::Css("[data-customer='c1']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for provider in ["bank", "p100"] {
        b.wait_for(&format!("h3[data-provider='{provider}']")).await;
    }
    let api = app
        .get_as(&reader, "/v2/accounts/balance?customer_id=c1&details=true")
        .await;
    let details = &api.body["details"];
    let count = details["fiat_accounts"].as_array().unwrap().len()
        + details["crypto_assets"].as_array().unwrap().len();
    assert_eq!(
        b.attrs("tr[data-account]", "data-account").await.len(),
        count
    );
    b.screenshot("customer").await;

    // P100 is down for c1: a refresh from the providers is served stale, and says so.
    open(&b, "overview").await;
    assert!(
        b.client
            .find(Locator::Css("[data-banner='stale']"))
            .await
            .is_err()
    );
    app.sim.set_fault(
        Provider::P100,
        Target::customer(ext(1)),
        Some(Fault::P100(P100Error::P500)),
    );
    b.client
        .find(Locator::Css("#refresh"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let banner = b.text("[data-banner='stale']").await;
    assert!(banner.contains("p100"), "{banner}");
    b.screenshot("overview-stale").await;
    app.stop().await;
}
