//! The currency registry: canonical spellings, fiat or crypto, display decimals, stablecoin
//! issuers and pegs. Lookup is case-insensitive and returns the canonical spelling; unknown codes
//! are kept (upper-cased) and flagged, never dropped.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of currency a registry entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fiat,
    Crypto,
    /// A crypto asset pegged to a fiat currency.
    Stablecoin {
        issuer: &'static str,
        peg: &'static str,
    },
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyInfo {
    /// Canonical spelling (`EURe`, `EURØP`, `BTC`).
    pub code: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// Minor units used when presenting a total in this currency.
    pub decimals: u32,
    /// Other spellings that mean the same currency (e.g. `EUROP` for `EURØP`).
    pub aliases: &'static [&'static str],
}

impl CurrencyInfo {
    pub fn is_crypto(&self) -> bool {
        !matches!(self.kind, Kind::Fiat)
    }
}

macro_rules! fiat {
    ($code:literal, $name:literal, $dec:literal) => {
        CurrencyInfo {
            code: $code,
            name: $name,
            kind: Kind::Fiat,
            decimals: $dec,
            aliases: &[],
        }
    };
}
macro_rules! crypto {
    ($code:literal, $name:literal, $dec:literal) => {
        CurrencyInfo {
            code: $code,
            name: $name,
            kind: Kind::Crypto,
            decimals: $dec,
            aliases: &[],
        }
    };
}
macro_rules! stable {
    ($code:literal, $name:literal, $issuer:literal, $peg:literal, $dec:literal) => {
        stable!($code, $name, $issuer, $peg, $dec, [])
    };
    ($code:literal, $name:literal, $issuer:literal, $peg:literal, $dec:literal, [$($alias:literal),*]) => {
        CurrencyInfo {
            code: $code,
            name: $name,
            kind: Kind::Stablecoin { issuer: $issuer, peg: $peg },
            decimals: $dec,
            aliases: &[$($alias),*],
        }
    };
}

/// Every currency Coffer knows. Stablecoins and issuers: seed `004_41bc46fdc16b6081.txt`.
pub static REGISTRY: &[CurrencyInfo] = &[
    fiat!("EUR", "Euro", 2),
    fiat!("USD", "US Dollar", 2),
    fiat!("GBP", "Pound Sterling", 2),
    fiat!("CHF", "Swiss Franc", 2),
    fiat!("PLN", "Polish Zloty", 2),
    fiat!("SEK", "Swedish Krona", 2),
    fiat!("NOK", "Norwegian Krone", 2),
    fiat!("DKK", "Danish Krone", 2),
    fiat!("CZK", "Czech Koruna", 2),
    fiat!("HUF", "Hungarian Forint", 2),
    fiat!("RON", "Romanian Leu", 2),
    fiat!("BGN", "Bulgarian Lev", 2),
    fiat!("ISK", "Icelandic Krona", 0),
    fiat!("JPY", "Japanese Yen", 0),
    fiat!("CAD", "Canadian Dollar", 2),
    fiat!("AUD", "Australian Dollar", 2),
    crypto!("BTC", "Bitcoin", 8),
    crypto!("ETH", "Ether", 8),
    crypto!("LTC", "Litecoin", 8),
    crypto!("DOGE", "Dogecoin", 8),
    crypto!("POL", "Polygon", 8),
    crypto!("SOL", "Solana", 8),
    crypto!("XRP", "XRP", 6),
    crypto!("TRX", "Tron", 6),
    stable!("USDT", "Tether USD", "Tether", "USD", 6),
    stable!("USDC", "USD Coin", "Circle", "USD", 6),
    stable!("EURC", "Euro Coin", "Circle", "EUR", 6),
    stable!("EURI", "Eurite", "Banking Circle", "EUR", 6),
    stable!("USD1", "USD1", "Crypto.com", "USD", 6),
    stable!("ENEUR", "ENEUR", "Fiat Republic", "EUR", 6),
    stable!("EURe", "Monerium EUR emoney", "Membrane Finance", "EUR", 6),
    stable!("eUSD", "eUSD", "Membrane Finance", "USD", 6),
    stable!("EURD", "Quantoz EURD", "Quantoz Payments", "EUR", 6),
    stable!("EURQ", "Quantoz EURQ", "Quantoz Payments", "EUR", 6),
    stable!("USDQ", "Quantoz USDQ", "Quantoz Payments", "USD", 6),
    stable!("EURØP", "EURØP", "Schuman Financial", "EUR", 6, ["EUROP"]),
    stable!("EURCV", "EUR CoinVertible", "SG Forge", "EUR", 6),
    stable!("EURR", "StablR Euro", "StablR", "EUR", 6),
    stable!("USDR", "StablR USD", "StablR", "USD", 6),
    stable!("EURSM", "Stable Mint EUR", "Stable Mint", "EUR", 6),
];

/// The registry entry for `code`, matched case-insensitively (Unicode-aware, so `eurøp` finds
/// `EURØP`), including aliases.
pub fn lookup(code: &str) -> Option<&'static CurrencyInfo> {
    let code = code.trim();
    // Fast path: the canonical spelling, which is what every stored `Currency` holds.
    if let Some(info) = REGISTRY.iter().find(|c| c.code == code) {
        return Some(info);
    }
    let upper = code.to_uppercase();
    REGISTRY.iter().find(|c| {
        c.code.to_uppercase() == upper || c.aliases.iter().any(|a| a.to_uppercase() == upper)
    })
}

/// A currency code in its canonical spelling. Unknown codes are kept upper-cased and
/// [`Currency::is_known`] says they are not in the registry.
///
/// A registry currency borrows the registry's static code, so the millions of accounts a cache
/// holds carry no copy of it; only an unknown code owns its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(Cow<'static, str>);

/// Display decimals used for a currency the registry does not know.
pub const UNKNOWN_DECIMALS: u32 = 8;

impl Currency {
    /// Canonicalises a code. Never fails: an unknown code is kept, upper-cased, and flagged.
    pub fn new(code: &str) -> Self {
        match lookup(code) {
            Some(info) => Currency(Cow::Borrowed(info.code)),
            None => Currency(Cow::Owned(code.trim().to_uppercase())),
        }
    }

    /// Like [`Currency::new`] but refuses codes the registry does not know, or empty ones.
    pub fn known(code: &str) -> Option<Self> {
        lookup(code).map(|info| Currency(Cow::Borrowed(info.code)))
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    /// Heap bytes this value owns (none for a registry currency): for weighing caches.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Cow::Borrowed(_) => 0,
            Cow::Owned(s) => s.capacity(),
        }
    }

    pub fn info(&self) -> Option<&'static CurrencyInfo> {
        lookup(&self.0)
    }

    pub fn is_known(&self) -> bool {
        self.info().is_some()
    }

    /// Whether the registry calls it crypto; `None` for an unknown code.
    pub fn is_crypto(&self) -> Option<bool> {
        self.info().map(CurrencyInfo::is_crypto)
    }

    /// Minor units for presenting totals.
    pub fn decimals(&self) -> u32 {
        self.info().map_or(UNKNOWN_DECIMALS, |i| i.decimals)
    }

    /// Like [`Currency::known`], with an error naming the input: for places where a currency
    /// must be one Coffer can price (the target currency of a conversion).
    pub fn parse_known(code: &str) -> Result<Self, CurrencyParseError> {
        Self::known(code).ok_or_else(|| CurrencyParseError(code.to_owned()))
    }

    /// The fiat currency a stablecoin is pegged to, if it is one.
    pub fn peg(&self) -> Option<&'static str> {
        match self.info()?.kind {
            Kind::Stablecoin { peg, .. } => Some(peg),
            _ => None,
        }
    }

    /// The stablecoin issuer, if it is one.
    pub fn issuer(&self) -> Option<&'static str> {
        match self.info()?.kind {
            Kind::Stablecoin { issuer, .. } => Some(issuer),
            _ => None,
        }
    }
}

/// A currency code the registry does not know, where a known one is required.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency `{0}`: expected a currency code Coffer knows, e.g. EUR, USD, BTC, USDC")]
pub struct CurrencyParseError(pub String);

impl std::str::FromStr for Currency {
    type Err = CurrencyParseError;
    /// Strict parsing: only registry currencies. Use [`Currency::new`] to keep unknown codes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_known(s)
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Currency::new(&s))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_canonical_spelling() {
        assert_eq!(Currency::new("eure").code(), "EURe");
        assert_eq!(Currency::new("europ").code(), "EURØP");
        assert_eq!(Currency::new("eurøp").code(), "EURØP");
        assert_eq!(Currency::new("usdc").code(), "USDC");
        assert_eq!(Currency::new("EUSD").code(), "eUSD");
    }

    /// The caches weigh accounts by what they own: a known currency owns nothing, however it
    /// was spelled or read.
    #[test]
    fn registry_currencies_own_no_heap() {
        assert_eq!(Currency::new("eure").heap_bytes(), 0);
        assert_eq!(Currency::known("BTC").map(|c| c.heap_bytes()), Some(0));
        let read: Currency = serde_json::from_str("\"usdc\"").unwrap();
        assert_eq!(read.heap_bytes(), 0);
        assert!(Currency::new("zzz").heap_bytes() >= 3);
    }

    #[test]
    fn unknown_codes_are_kept_and_flagged() {
        let c = Currency::new("zzz");
        assert_eq!(c.code(), "ZZZ");
        assert!(!c.is_known());
        assert_eq!(c.is_crypto(), None);
    }

    /// Every stablecoin seed 004 names, with its issuer and peg.
    #[test]
    fn seed_004_stablecoins_have_issuer_and_peg() {
        let seed = [
            ("USDC", "Circle", "USD"),
            ("EURC", "Circle", "EUR"),
            ("EURI", "Banking Circle", "EUR"),
            ("USD1", "Crypto.com", "USD"),
            ("ENEUR", "Fiat Republic", "EUR"),
            ("EURe", "Membrane Finance", "EUR"),
            ("eUSD", "Membrane Finance", "USD"),
            ("EURD", "Quantoz Payments", "EUR"),
            ("EURQ", "Quantoz Payments", "EUR"),
            ("USDQ", "Quantoz Payments", "USD"),
            ("EURØP", "Schuman Financial", "EUR"),
            ("EURCV", "SG Forge", "EUR"),
            ("EURR", "StablR", "EUR"),
            ("USDR", "StablR", "USD"),
            ("EURSM", "Stable Mint", "EUR"),
        ];
        for (code, issuer, peg) in seed {
            let c = Currency::parse_known(code).unwrap();
            assert_eq!(c.code(), code);
            assert_eq!(c.issuer(), Some(issuer), "{code}");
            assert_eq!(c.peg(), Some(peg), "{code}");
            assert_eq!(c.is_crypto(), Some(true), "{code}");
            // Round trip through the other case.
            assert_eq!(Currency::new(&code.to_lowercase()).code(), code);
            assert_eq!(Currency::new(&code.to_uppercase()).code(), code);
        }
    }

    /// The fiat currencies a European business meets, and the crypto assets of the P100 seed.
    #[test]
    fn fiat_and_seed_crypto_are_known() {
        for code in [
            "EUR", "USD", "GBP", "CHF", "PLN", "SEK", "NOK", "DKK", "CZK", "HUF", "RON", "JPY",
        ] {
            assert_eq!(
                Currency::parse_known(code).unwrap().is_crypto(),
                Some(false),
                "{code}"
            );
        }
        for code in ["btc", "eth", "ltc", "doge", "pol", "usdc", "eurc"] {
            let c = Currency::parse_known(code).unwrap();
            assert_eq!(c.is_crypto(), Some(true), "{code}");
            assert_eq!(c.code(), code.to_uppercase());
        }
        assert_eq!(Currency::new("BTC").decimals(), 8);
        assert_eq!(Currency::new("EUR").decimals(), 2);
    }

    #[test]
    fn registry_codes_and_aliases_are_unique_case_insensitively() {
        let mut seen = std::collections::HashSet::new();
        for c in REGISTRY {
            for name in std::iter::once(&c.code).chain(c.aliases.iter()) {
                assert!(seen.insert(name.to_uppercase()), "duplicate {name}");
            }
        }
    }

    #[test]
    fn parse_known_names_the_input() {
        let err = Currency::parse_known("xyz").unwrap_err();
        assert!(err.to_string().contains("`xyz`"));
        assert!("".parse::<Currency>().is_err());
        assert_eq!("eurøp".parse::<Currency>().unwrap().code(), "EURØP");
    }

    #[test]
    fn jpy_has_no_minor_units() {
        assert_eq!(Currency::new("jpy").decimals(), 0);
    }
}
