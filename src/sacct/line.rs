//! One line of `sacct --parsable2` (or `--parsable`) output: which column is which, header
//! detection, and the allocation a line describes.
//!
//! Columns are found by name: from a header line when the input has one, else from the
//! `--format` list that was (or would have been) requested. Only the columns needed are read;
//! others are ignored, so any superset of the needed fields works, in any order.
//!
//! This room owns one line and nothing beyond it: it must not know periods, sums, the sacct
//! command or the output records. `layout` finds the columns, `values` checks the State,
//! Account and User fields, `filter` picks our accounts, `parser` turns a line into an
//! [`Allocation`].

mod filter;
mod layout;
mod parser;
mod values;

#[cfg(test)]
mod tests;

pub use filter::AccountFilter;
pub use layout::{
    EXACT_FORMAT, Layout, LayoutError, REFERENCE_FORMAT, default_format, header_names, is_header,
    unsupported_format,
};
pub use parser::{Allocation, LineError, LineParser, Parsed};
pub use values::{STATES, is_name_byte, is_state};
