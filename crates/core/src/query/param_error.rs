//! A bad query parameter and the two helpers every parser wording one shares: the quoting of
//! user text in messages and the boolean values. Apart from `params.rs` so that the parsers it
//! calls (`search`, `sort`, `cursor`) need not import their caller.

/// A bad query parameter: which one (as the caller spelled it) and what was expected.
/// The server answers it as 400 with `details.param`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid parameter `{param}`: {message}")]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl ParamError {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            param: quote(&param.into()),
            message: message.into(),
        }
    }
}

/// User text quoted in messages, shortened so a hostile input cannot make them huge.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// `true`/`false` (any case) or `1`/`0`.
pub(crate) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "`{}` is not a boolean: expected `true` or `false`",
            quote(v)
        )),
    }
}
