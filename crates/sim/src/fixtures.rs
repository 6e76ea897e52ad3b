//! The seeds' example bodies, verbatim, and the ids the simulators serve them under.

/// P100 seed `000_070b0b533eda9812.txt`: the 200 body of Get User Balances.
pub const P100_SEED_BODY: &str = include_str!("../fixtures/p100_balances.json");
/// The `externalUserId` of the seed's curl example; [`P100_SEED_BODY`] is served for it.
pub const P100_SEED_USER: &str = "660a95b2-a486-4406-a90b-e3bcf7c74ecc";
/// The `userId` inside [`P100_SEED_BODY`] (differs from [`P100_SEED_USER`]).
pub const P100_SEED_USER_ID: &str = "5f8d1243-105f-43a2-bf9e-bfc7e97bac41";

/// Corebanq seed `004_41bc46fdc16b6081.txt`: the 200 body of `GET /v2/accounts/balance`.
pub const COREBANQ_SEED_BODY: &str = include_str!("../fixtures/corebanq_balance.json");
/// The `customer_id` in [`COREBANQ_SEED_BODY`]; the body is served for it (verbatim, whatever
/// `currency` or `details` ask).
pub const COREBANQ_SEED_CUSTOMER: &str = "8f43255d-f71e-48a0-a925-54f1dc35e89d";
/// Corebanq seed's error body example (`{"error","message","details"}`).
pub const COREBANQ_ERROR_BODY: &str = include_str!("../fixtures/corebanq_error.json");
