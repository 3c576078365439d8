//! What a usage component must measure: the TRES names SLURM can report, and the check
//! that each usage component reads at least one of them.

use super::yaml::Node;
use super::{Component, ConfigError, Offering};

/// Whether SLURM can report a TRES of this name in AllocTRES: the built-in types, or a
/// `gres/`, `license/`, `fs/`, `bb/` or `ic/` type with a name.
///
/// ```
/// use waldur_usage::config::is_measurable_tres;
/// assert!(is_measurable_tres("gres/gpu") && is_measurable_tres("mem"));
/// assert!(!is_measurable_tres("gpu") && !is_measurable_tres("gres/"));
/// ```
pub fn is_measurable_tres(name: &str) -> bool {
    const BUILT_IN: [&str; 7] = ["cpu", "mem", "node", "billing", "energy", "vmem", "pages"];
    const TYPED: [&str; 5] = ["gres/", "license/", "fs/", "bb/", "ic/"];
    BUILT_IN.contains(&name)
        || TYPED
            .iter()
            .any(|t| name.strip_prefix(t).is_some_and(|rest| !rest.is_empty()))
}

impl Offering {
    /// The SLURM TRES that the offering's usage components read: each component's own name,
    /// or the TRES of its `target_components`; only those SLURM can report
    /// ([`is_measurable_tres`]). Sorted, each once.
    pub fn tres_read(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .components
            .iter()
            .filter(|(_, c)| c.accounting_type.as_deref().is_none_or(|t| t == "usage"))
            .flat_map(|(key, c)| {
                if c.target_components.is_empty() {
                    vec![key.clone()]
                } else {
                    c.target_components.keys().cloned().collect()
                }
            })
            .filter(|t| is_measurable_tres(t))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A usage component must read at least one TRES that SLURM reports; otherwise it would bill
/// 0.00 for every resource, silently. (A `limit` component is not measured, so not checked.)
pub(super) fn check_measures_something(
    key: &str,
    component: &Component,
    node: &Node<'_>,
) -> Result<(), ConfigError> {
    if component
        .accounting_type
        .as_deref()
        .is_some_and(|t| t != "usage")
    {
        return Ok(());
    }
    let hint = |name: &str| {
        if is_measurable_tres(&format!("gres/{name}")) && !name.contains('/') {
            format!(" (did you mean gres/{name}?)")
        } else {
            String::new()
        }
    };
    if node.get("target_components").is_some() && component.target_components.is_empty() {
        return Err(node.child_err(
            "target_components",
            "names no TRES, so this component would be 0.00 for every resource: list the TRES \
             it adds up, or remove target_components to read the TRES of the same name",
        ));
    }
    if component.target_components.is_empty() {
        if !is_measurable_tres(key) {
            return Err(node.err(&format!(
                "SLURM reports no TRES named {key:?}, so this component would be 0.00 for every \
                 resource{}: name it after a TRES (cpu, mem, node, billing, gres/NAME, \
                 license/NAME, ...) or map it with target_components",
                hint(key)
            )));
        }
        return Ok(());
    }
    // A mapping may add a TRES this SLURM does not have (the reference agent's own example adds
    // `gpu`), but at least one of its sources must be something SLURM reports.
    if !component
        .target_components
        .keys()
        .any(|t| is_measurable_tres(t))
    {
        let names: Vec<String> = component
            .target_components
            .keys()
            .map(|t| format!("{t:?}{}", hint(t)))
            .collect();
        return Err(node.child_err(
            "target_components",
            &format!(
                "names no TRES that SLURM reports ({}), so this component would be 0.00 for \
                 every resource: use TRES names (cpu, mem, node, billing, gres/NAME, \
                 license/NAME, ...)",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}
