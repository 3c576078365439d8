//! The push application behind `waldur-push`: usage records in, what changed out to Waldur.
//!
//! It owns reading the input into complete periods, the compact usage state, the plan, running
//! the POSTs, dry-run and offline rendering, filing (which month a POST lands in), read-back,
//! registration, `--check` and `--audit`. It talks to Waldur only through the client in
//! [`crate::waldur`]; it knows nothing of HTTP, retries or credentials, and nothing of the
//! command line (that is [`crate::tool`]).
//!
//! One concern per module:
//! - [`input`]: usage records into complete, validated periods;
//! - [`line`](mod@line): the fast path that reads a usage line in place;
//! - [`usage`]: the compact state of one period's usage;
//! - [`intern`]: names interned once per period;
//! - [`filing`]: which billing month a POST lands in, decided when it is sent;
//! - [`plan`]: the pure "what changed" computation;
//! - [`submit`]: the bounded pool that runs POSTs;
//! - [`register`]: the agent identity shown in Waldur;
//! - [`pusher`]: one run, period by period: setup, POSTs, read-back, past months;
//! - [`stream`]: the loop of a run, with its summary lines;
//! - [`render`]: result records written straight as JSON (`--offline`, `--dry-run`);
//! - [`readback`]: what Waldur stores after the POSTs must equal what was sent;
//! - [`check`]: `--check` diagnostics;
//! - [`audit`]: `--audit`, what Waldur holds against what SLURM measured.

pub mod audit;
pub mod check;
pub mod filing;
pub mod input;
pub mod intern;
pub mod line;
pub mod plan;
pub mod pusher;
pub mod readback;
pub mod register;
pub mod render;
pub mod stream;
pub mod submit;
pub mod usage;
