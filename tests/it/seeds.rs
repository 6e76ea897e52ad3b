//! The providers' documented example bodies come out of Coffer with exactly the amounts that
//! went in, on both stores.

use crate::common;

use coffer_sim::fixtures::{COREBANQ_SEED_CUSTOMER, P100_SEED_USER, P100_SEED_USER_ID};
use serde_json::Value;

fn find<'a>(accounts: &'a [Value], id: &str) -> &'a Value {
    accounts
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("account {id} missing"))
}

both!(
    seed_bodies_come_out_exact,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("acme", Some(P100_SEED_USER), Some(COREBANQ_SEED_CUSTOMER))
            .await;
        let b = app
            .ok("/v2/accounts/balance?customer_id=acme&details=true")
            .await;
        let fiat = b["details"]["fiat_accounts"].as_array().unwrap().clone();
        let crypto = b["details"]["crypto_assets"].as_array().unwrap().clone();
        let all: Vec<Value> = fiat.iter().chain(crypto.iter()).cloned().collect();
        // 1 fiat + 7 crypto from P100, 3 BTC from Corebanq.
        assert_eq!(all.len(), 11, "{b}");

        let usdc = find(&all, "p100:840770da-996d-4f20-826f-5bc46bfdffd9");
        assert_eq!(usdc["balance"], "3.000000");
        assert_eq!(usdc["currency"], "USDC");
        assert_eq!(usdc["provider_rate"]["rate"], "0.858814");
        assert_eq!(usdc["provider_customer_ref"], P100_SEED_USER_ID);
        assert_eq!(usdc["metadata"]["issuer"], "Circle");
        let wallets = usdc["wallets"].as_array().unwrap();
        assert_eq!(wallets.len(), 2);
        let polygon = wallets.iter().find(|w| w["network"] == "polygon").unwrap();
        assert_eq!(
            polygon["address"],
            "0x2d0236af29ea67721d013dd7ab44ffbad50918ef"
        );
        assert_eq!(polygon["withdrawal_fee"], "0.5");
        assert_eq!(polygon["withdrawal_min"], "2");

        let doge = find(&all, "p100:310f4e65-3589-4096-9d88-532bbf19ccb1");
        assert_eq!(doge["balance"], "0.00000000");
        assert_eq!(doge["provider_rate"]["rate"], "0.09872368");
        let btc = find(&all, "p100:a1a26f58-2f12-4738-8000-f0ee8927fd8b");
        assert_eq!(btc["provider_rate"]["rate"], "69258.93415658");
        assert_eq!(btc["wallets"][0]["withdrawal_min"], "0.000001");
        let eur = find(&all, "p100:997d954c-529c-453d-b8b4-d35cb8710538");
        assert_eq!(eur["balance"], "0.00");
        assert_eq!(eur["is_crypto"], false);

        // Corebanq: three BTC accounts whose `active` and `status` disagree, kept apart.
        let bank_btc: Vec<&Value> = all.iter().filter(|a| a["provider"] == "bank").collect();
        assert_eq!(bank_btc.len(), 3);
        assert!(
            bank_btc
                .iter()
                .all(|a| a["currency"] == "BTC" && a["status"] == "active")
        );
        assert_eq!(bank_btc.iter().filter(|a| a["active"] == true).count(), 1);
        let main = find(&all, "bank:f17066c7-dbf8-47d8-ada6-b828701964be");
        assert_eq!(
            main["main_wallet_address"],
            "tb1qecx8j4kh7mfvh28hru0ckea8hzegd0984s0hdh"
        );

        // 3.000000 USDC × 0.858814 = 2.576442 EUR; every other balance is 0.
        assert_eq!(b["total_balance"], "2.58");
        assert_eq!(b["crypto_balance"], "2.58");
        assert_eq!(b["fiat_balance"], "0.00");
        assert_eq!(
            b["exact"]["total_balance"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
                .to_string()
                .trim_end_matches('0'),
            "2.576442"
        );
        assert_eq!(b["currency"], "EUR");
        assert_eq!(b["stale"], false);
        assert_eq!(b["partial"], false);
        assert!(
            b["as_of"]["p100"].is_string() && b["as_of"]["bank"].is_string(),
            "{b}"
        );
        let rates = b["rates"].as_array().unwrap();
        assert!(rates.iter().any(|r| r["currency"] == "USDC"
            && r["rate"] == "0.858814"
            && r["source"] == "provider"));
        app.stop().await;
    }
);
