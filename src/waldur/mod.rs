//! The Waldur REST client and the submission logic behind `waldur-push`.
//!
//! One concern per module:
//! - [`url`]: base URL from `waldur_api_url`, https rule, query strings;
//! - [`http`]: the ureq agent, retries, pagination;
//! - [`auth`]: where the token comes from, OIDC client credentials;
//! - [`error`]: typed client errors and their exit statuses;
//! - [`api`]: typed endpoints and payloads;
//! - [`amount`]: exact two-place amounts;
//! - [`dates`]: billing periods and the `date` sent with usage;
//! - [`input`]: usage records into complete, validated periods;
//! - [`plan`]: the pure "what changed" computation;
//! - [`submit`]: the bounded pool that runs POSTs;
//! - [`register`]: the agent identity shown in Waldur;
//! - [`push`]: one run, period by period;
//! - [`check`]: `--check` diagnostics.

pub mod amount;
pub mod api;
pub mod auth;
pub mod check;
pub mod dates;
pub mod error;
pub mod http;
pub mod input;
pub mod plan;
pub mod push;
pub mod register;
pub mod submit;
pub mod url;
