//! Which accounts are ours, compared ASCII case-insensitively.

/// Which accounts are ours. Compared ASCII case-insensitively, before anything else of the
/// line is read, so another account's odd line cannot fail our period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountFilter {
    /// Every account.
    #[default]
    All,
    /// Accounts starting with this prefix (`allocation_prefix`).
    Prefix(String),
    /// Exactly these accounts (`--accounts`).
    List(Vec<String>),
}

impl AccountFilter {
    pub(super) fn lowered(self) -> Lowered {
        match self {
            AccountFilter::All => Lowered::All,
            AccountFilter::Prefix(p) if p.is_empty() => Lowered::All,
            AccountFilter::Prefix(p) => Lowered::Prefix(p.into_bytes().to_ascii_lowercase()),
            AccountFilter::List(l) => Lowered::List(
                l.into_iter()
                    .map(|a| a.into_bytes().to_ascii_lowercase())
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Lowered {
    All,
    Prefix(Vec<u8>),
    List(Vec<Vec<u8>>),
}

impl Lowered {
    pub(super) fn admits(&self, account: &[u8]) -> bool {
        match self {
            Lowered::All => true,
            Lowered::Prefix(p) => {
                account.len() >= p.len() && account[..p.len()].eq_ignore_ascii_case(p)
            }
            Lowered::List(l) => l.iter().any(|a| a.eq_ignore_ascii_case(account)),
        }
    }
}
