//! One module per binary: its flags and its main flow; src/bin/ only calls them.
//!
//! A tool module owns its argh `Args` (whose doc comments are the `--help` text) and a `run`
//! that turns them into an exit status; the logic it calls lives in the library's rooms.

pub mod waldur_push;
