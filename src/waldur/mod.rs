//! The Waldur REST client: transport, credentials, URLs, typed endpoints and payloads, errors.
//! The payloads carry two-place [`crate::decimal::Amount`]s, which the client shares with the
//! application rather than owning.
//!
//! It knows Waldur's API and nothing of what is sent through it: no billing periods, no usage
//! records, no plans or push runs. Those live in the application (src/push/), which calls
//! this client; the client never calls back. Dates and periods come in as plain strings.
//!
//! One concern per module:
//! - [`url`]: base URL from `waldur_api_url`, https rule, query strings;
//! - [`http`]: the ureq agent, retries, pagination;
//! - [`auth`]: where the token comes from, OIDC client credentials;
//! - [`error`]: typed client errors and their exit statuses;
//! - [`api`]: typed endpoints and payloads.

pub mod api;
pub mod auth;
pub mod error;
pub mod http;
pub mod url;
