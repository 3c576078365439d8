//! From TRES x seconds to Waldur component amounts: one rule per `backend_components` entry.
//!
//! - A **passthrough** component `c` (no `target_components`) reads the TRES named `c`:
//!   `amount = tres_seconds[c] / 60 / unit_factor`.
//! - A **mapped** component reads each TRES under its `target_components` and adds them up:
//!   `amount = (sum of tres_seconds[t] / 60 / factor[t]) / unit_factor` (unit_factor 1 when not
//!   given).
//!
//! Each rule is reduced at start-up to one exact multiplier per source TRES, so converting a
//! record is a few multiplications and additions of fractions and one rounding.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::{Factor, Offering};
use crate::decimal::Amount;
use crate::records::{TresRecord, UsageRecord};

use super::ratio::Ratio;

/// Seconds per minute: TRES x seconds to the TRES x minutes that unit factors are defined on.
const SECONDS_PER_MINUTE: u128 = 60;

/// A conversion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// A factor in the config is so large (or has so many decimals) that its multiplier does not
    /// fit in 128 bits. A configuration problem.
    FactorTooLarge {
        /// Component name.
        component: String,
    },
    /// An amount does not fit in 128-bit arithmetic. Reported instead of a wrong number.
    Overflow {
        /// Component name.
        component: String,
        /// `YYYY-MM`.
        period: String,
        /// SLURM account.
        account: String,
        /// SLURM user, `None` for the account total.
        user: Option<String>,
    },
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::FactorTooLarge { component } => write!(
                f,
                "backend_components.{component}: the factors of this component are too large \
                 to convert exactly (128-bit arithmetic)"
            ),
            ConvertError::Overflow {
                component,
                period,
                account,
                user,
            } => {
                let who = match user {
                    Some(u) => format!("user {u:?} of account {account:?}"),
                    None => format!("account {account:?} (total)"),
                };
                write!(
                    f,
                    "component {component:?} for {who} in {period}: the amount is too large \
                     for exact 128-bit arithmetic; refusing to report a wrong number"
                )
            }
        }
    }
}

impl std::error::Error for ConvertError {}

/// How one Waldur component is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Waldur component type (the `backend_components` key).
    pub component: String,
    /// Source TRES name -> exact multiplier from TRES x seconds to the component's unit.
    pub sources: Vec<(String, Ratio)>,
}

/// An amount did not fit in 128-bit arithmetic (the caller names the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Rule {
    /// This component's amount for one record, rounded once. `seconds(i)` gives the TRES x
    /// seconds of source `i` (the `i`th of [`Rule::sources`]), `None` when the record lacks
    /// that TRES. `Ok(None)` when no source is present and the record is not an account total
    /// (`total`): a user record carries only the components it used.
    pub fn amount(
        &self,
        total: bool,
        mut seconds: impl FnMut(usize) -> Option<u128>,
    ) -> Result<Option<Amount>, Overflow> {
        let mut present = false;
        let mut amount = Ratio::ZERO;
        for (i, (_, multiplier)) in self.sources.iter().enumerate() {
            if let Some(seconds) = seconds(i) {
                present = true;
                amount = Ratio::from_int(seconds)
                    .checked_mul(*multiplier)
                    .and_then(|part| amount.checked_add(part))
                    .ok_or(Overflow)?;
            }
        }
        if present || total {
            amount.round_to_amount().map(Some).ok_or(Overflow)
        } else {
            Ok(None)
        }
    }
}

/// The conversion rules of one offering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converter {
    rules: Vec<Rule>,
}

/// `1 / (60 * factor)` as an exact fraction: `10^scale / (60 * mantissa)`.
fn per_minute(factor: Factor) -> Option<Ratio> {
    let num = 10u128.checked_pow(factor.scale)?;
    let den = SECONDS_PER_MINUTE.checked_mul(factor.mantissa)?;
    Ratio::new(num, den)
}

/// `1 / factor` as an exact fraction.
fn reciprocal(factor: Factor) -> Option<Ratio> {
    Ratio::new(10u128.checked_pow(factor.scale)?, factor.mantissa)
}

impl Converter {
    /// Build the rules for `offering`'s `backend_components`.
    pub fn new(offering: &Offering) -> Result<Converter, ConvertError> {
        let mut rules = Vec::with_capacity(offering.components.len());
        for (name, component) in &offering.components {
            let too_large = || ConvertError::FactorTooLarge {
                component: name.clone(),
            };
            let sources = if component.target_components.is_empty() {
                vec![(
                    name.clone(),
                    per_minute(component.unit_factor).ok_or_else(too_large)?,
                )]
            } else {
                let own = reciprocal(component.unit_factor).ok_or_else(too_large)?;
                component
                    .target_components
                    .iter()
                    .map(|(tres, factor)| {
                        let m = per_minute(*factor)
                            .and_then(|m| m.checked_mul(own))
                            .ok_or_else(too_large)?;
                        Ok((tres.clone(), m))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            rules.push(Rule {
                component: name.clone(),
                sources,
            });
        }
        Ok(Converter { rules })
    }

    /// The rules, in component-name order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Is `tres` read by some component?
    pub fn uses(&self, tres: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.sources.iter().any(|(s, _)| s == tres))
    }

    /// Convert one `tres` record. The account total (`user: None`) carries every component
    /// (`0.00` when its sources are absent); a user record carries the components that read at
    /// least one TRES present in the record (even when its value is 0).
    pub fn convert(&self, tres: &TresRecord) -> Result<UsageRecord, ConvertError> {
        let total = tres.user.is_none();
        let mut components = BTreeMap::new();
        for rule in &self.rules {
            let amount = rule
                .amount(total, |i| {
                    tres.tres_seconds.get(&rule.sources[i].0).copied()
                })
                .map_err(|Overflow| overflow(rule, tres))?;
            if let Some(amount) = amount {
                components.insert(rule.component.clone(), amount.to_string());
            }
        }
        Ok(UsageRecord {
            period: tres.period.clone(),
            account: tres.account.clone(),
            user: tres.user.clone(),
            jobs: tres.jobs,
            components,
        })
    }
}

fn overflow(rule: &Rule, tres: &TresRecord) -> ConvertError {
    ConvertError::Overflow {
        component: rule.component.clone(),
        period: tres.period.clone(),
        account: tres.account.clone(),
        user: tres.user.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn offering(components: &str) -> Offering {
        let yaml = format!(
            "offerings:\n  - name: T\n    waldur_api_url: https://w.example/api/\n    \
             waldur_offering_uuid: 0123456789abcdef0123456789abcdef\n    \
             backend_components:\n{components}"
        );
        Config::parse(&yaml, "t.yaml")
            .unwrap()
            .offering(None)
            .unwrap()
            .clone()
    }

    fn record(user: Option<&str>, tres: &[(&str, u128)]) -> TresRecord {
        TresRecord {
            period: "2024-03".into(),
            account: "hpc_a".into(),
            user: user.map(Into::into),
            jobs: 2,
            tres_seconds: tres.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn amounts(u: &UsageRecord) -> Vec<(&str, &str)> {
        u.components
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn multipliers_are_exact_fractions() {
        let o = offering(
            "      cpu: { unit_factor: 60000 }\n      node_hours:\n        unit_factor: 2.5\n        \
             target_components: { cpu: { factor: 64 }, gres/gpu: { factor: 0.5 } }\n",
        );
        let c = Converter::new(&o).unwrap();
        // cpu: 1 / (60 * 60000) = 1/3600000.
        assert_eq!(
            c.rules()[0].sources,
            vec![("cpu".to_string(), Ratio::new(1, 3_600_000).unwrap())]
        );
        // node_hours: cpu 1/(60*64) / 2.5 = 1/9600; gres/gpu 1/(60*0.5) / 2.5 = 1/75.
        assert_eq!(
            c.rules()[1].sources,
            vec![
                ("cpu".to_string(), Ratio::new(1, 9600).unwrap()),
                ("gres/gpu".to_string(), Ratio::new(1, 75).unwrap()),
            ]
        );
        assert!(c.uses("gres/gpu") && !c.uses("billing"));
    }

    #[test]
    fn users_carry_what_they_used_and_totals_carry_everything() {
        let o = offering(
            "      cpu: { unit_factor: 60000 }\n      mem: { unit_factor: 61440 }\n      \
             gres/gpu: { unit_factor: 60 }\n",
        );
        let c = Converter::new(&o).unwrap();
        // cpu 0 s is present, so it is reported as 0.00; gres/gpu is absent, so left out;
        // billing is used by nothing and ignored. mem: 3686400 / 60 / 61440 = 1.
        let u = c
            .convert(&record(
                Some("alice"),
                &[("cpu", 0), ("mem", 3_686_400), ("billing", 99)],
            ))
            .unwrap();
        assert_eq!(amounts(&u), [("cpu", "0.00"), ("mem", "1.00")]);
        assert_eq!((u.user.as_deref(), u.jobs), (Some("alice"), 2));
        let t = c.convert(&record(None, &[])).unwrap();
        assert_eq!(
            amounts(&t),
            [("cpu", "0.00"), ("gres/gpu", "0.00"), ("mem", "0.00")]
        );
    }

    #[test]
    fn overflow_names_the_component_and_record() {
        // unit_factor 0.0001: the multiplier is 10000/60 = 500/3, and MAX * 500/3 cannot fit.
        let o = offering("      cpu: { unit_factor: 0.0001 }\n");
        let c = Converter::new(&o).unwrap();
        let e = c
            .convert(&record(Some("bob"), &[("cpu", u128::MAX)]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "component \"cpu\" for user \"bob\" of account \"hpc_a\" in 2024-03: the amount is \
             too large for exact 128-bit arithmetic; refusing to report a wrong number"
        );
    }

    #[test]
    fn an_amount_past_i128_hundredths_is_an_overflow_never_a_wrapped_number() {
        // unit_factor 1: 3 seconds are 5 hundredths. 3k seconds convert for the largest k with
        // 5k <= i128::MAX (what waldur-push can read); 3 (k + 1) seconds do not, though a u128
        // would still hold their hundredths.
        let c = Converter::new(&offering("      cpu: { unit_factor: 1 }\n")).unwrap();
        let k = i128::MAX as u128 / 5;
        let largest = i128::try_from(5 * k).unwrap();
        let fits = c.convert(&record(None, &[("cpu", 3 * k)])).unwrap();
        let written = &fits.components["cpu"];
        assert_eq!(*written, Amount::from_hundredths(largest).to_string());
        assert_eq!(Amount::parse_plain(written).unwrap().hundredths(), largest);
        let e = c
            .convert(&record(None, &[("cpu", 3 * (k + 1))]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "component \"cpu\" for account \"hpc_a\" (total) in 2024-03: the amount is too \
             large for exact 128-bit arithmetic; refusing to report a wrong number"
        );
    }

    #[test]
    fn absurd_factors_are_rejected_at_start_up() {
        // 10^38 fits in a u128 (max ~3.4 x 10^38), 60 x 10^38 does not.
        let o = offering("      cpu: { unit_factor: \"1e38\" }\n");
        assert_eq!(
            Converter::new(&o),
            Err(ConvertError::FactorTooLarge {
                component: "cpu".into()
            })
        );
    }
}
