//! Exact money: parsing decimals from text and JSON numbers, rounding for presentation.
