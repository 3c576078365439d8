//! The Waldur REST client and the submission logic behind `waldur-push`.
//!
//! One concern per module:
//! - [`url`]: base URL from `waldur_api_url`, https rule, query strings;
//! - [`http`]: the ureq agent, retries, pagination;
//! - [`auth`]: where the token comes from, OIDC client credentials;
//! - [`error`]: typed client errors and their exit statuses;
//! - [`api`]: typed endpoints and payloads;
//! - [`amount`]: exact two-place amounts;
//! - [`input`]: usage records into complete, validated periods;
//! - [`line`]: the fast path that reads a usage line in place;
//! - [`usage`]: the compact state of one period's usage;
//! - [`intern`]: names interned once per period;
//! - [`filing`]: which billing month a POST lands in, decided when it is sent;
//! - [`plan`]: the pure "what changed" computation;
//! - [`submit`]: the bounded pool that runs POSTs;
//! - [`register`]: the agent identity shown in Waldur;
//! - [`push`]: one run, period by period;
//! - [`stream`]: the loop of a run, with its summary lines;
//! - [`render`]: result records written straight as JSON (`--offline`, `--dry-run`);
//! - [`readback`]: what Waldur stores after the POSTs must equal what was sent;
//! - [`check`]: `--check` diagnostics;
//! - [`audit`]: `--audit`, what Waldur holds against what SLURM measured.

pub mod amount;
pub mod api;
pub mod audit;
pub mod auth;
pub mod check;
pub mod error;
pub mod filing;
pub mod http;
pub mod input;
pub mod intern;
pub mod line;
pub mod plan;
pub mod push;
pub mod readback;
pub mod register;
pub mod render;
pub mod stream;
pub mod submit;
pub mod url;
pub mod usage;
