//! The integration tests, one module a tested concern, compiled into one test binary (`suite`)
//! so the shared support code is built and linked once.
//!
//! One file's tests: `cargo test --test suite month_split::`; one test:
//! `cargo test --test suite month_split::some_test_name -- --exact`.

#[path = "../support/mod.rs"]
mod support;

#[path = "../e2e/mod.rs"]
mod e2e;

#[path = "../waldur_push_util/mod.rs"]
mod waldur_push_util;

mod config_file;
mod demo;
mod e2e_diagnose;
mod e2e_slurm;
mod fake_waldur;
mod golden_outputs;
mod layering;
mod man_pages;
mod month_split;
mod slurm_usage;
mod slurm_usage_fuzz;
mod slurm_usage_grammar;
mod slurm_usage_sacct;
mod usage_convert;
mod waldur_push;
mod waldur_push_audit;
mod waldur_push_budget;
mod waldur_push_check;
mod waldur_push_faults;
mod waldur_push_input;
mod waldur_push_metrics;
mod waldur_push_months;
mod waldur_push_outcomes;
mod waldur_push_security;
mod wrappers;
