//! Read-back: after the POSTs of a period, what Waldur stores for that billing period must be
//! exactly what was sent. A server can answer 201 and still file a value elsewhere (7.0.x
//! ignores `date`), so a 201 alone proves nothing about the month.
//!
//! Pure: the caller reads the period again (the same paged lists as the plan) and hands the
//! result to [`compare`].

use super::plan::Existing;
use crate::decimal::Amount;

/// One value that a POST answered 201 for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The account it belongs to.
    pub account: String,
    /// Resource UUID.
    pub resource: String,
    /// Component type.
    pub component: String,
    /// `None` for the resource total, else the username.
    pub user: Option<String>,
    /// The amount sent.
    pub amount: Amount,
}

/// A value Waldur does not hold as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was sent.
    pub sent: Sent,
    /// What the billing period holds instead (`None`: nothing).
    pub stored: Option<Amount>,
}

impl Mismatch {
    /// `hpc_a (resource R) cpu: sent 1.44, Waldur holds nothing for 2024-03`.
    pub fn describe(&self, period: &str) -> String {
        let who = match &self.sent.user {
            Some(u) => format!(" user {u}"),
            None => String::new(),
        };
        let stored = match self.stored {
            Some(v) => format!("Waldur holds {v}"),
            None => "Waldur holds nothing".to_string(),
        };
        format!(
            "{} (resource {}) {}{who}: sent {}, {stored} for {period}",
            self.sent.account, self.sent.resource, self.sent.component, self.sent.amount
        )
    }
}

/// The sent values that `stored` (the period read again) does not hold exactly.
pub fn compare(sent: &[Sent], stored: &Existing) -> Vec<Mismatch> {
    sent.iter()
        .filter_map(|s| {
            let value = match &s.user {
                None => stored.total(&s.resource, &s.component),
                Some(user) => stored
                    .component_usage(&s.resource, &s.component)
                    .and_then(|cu| stored.user(cu, user)),
            };
            (value != Some(s.amount)).then(|| Mismatch {
                sent: s.clone(),
                stored: value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waldur::api::ComponentUsage;

    fn row(resource: &str, component: &str, usage: &str) -> ComponentUsage {
        serde_json::from_value(serde_json::json!({
            "uuid": format!("cu-{resource}-{component}"),
            "resource_uuid": resource,
            "type": component,
            "usage": usage,
        }))
        .unwrap()
    }

    fn sent(resource: &str, component: &str, amount: &str) -> Sent {
        Sent {
            account: "hpc_a".into(),
            resource: resource.into(),
            component: component.into(),
            user: None,
            amount: Amount::parse(amount).unwrap(),
        }
    }

    #[test]
    fn exact_values_match_and_others_are_named() {
        let stored = Existing::new(&[row("r1", "cpu", "1.44"), row("r1", "mem", "2.00")], &[]);
        let all = [
            sent("r1", "cpu", "1.44"),
            sent("r1", "mem", "2.50"),
            sent("r2", "cpu", "1.00"),
        ];
        let bad = compare(&all, &stored);
        assert_eq!(bad.len(), 2);
        assert_eq!(
            bad[0].describe("2024-03"),
            "hpc_a (resource r1) mem: sent 2.50, Waldur holds 2.00 for 2024-03"
        );
        assert_eq!(
            bad[1].describe("2024-03"),
            "hpc_a (resource r2) cpu: sent 1.00, Waldur holds nothing for 2024-03"
        );
    }
}
