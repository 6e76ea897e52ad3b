//! The rate table: a base currency, rates from several sources with precedence, triangulation.
