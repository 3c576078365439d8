//! `month-split`: print the monthly billing periods to report, as `period` records (or TSV).
//! See `waldur_usage::period`.
//! The flags and the flow are in `waldur_usage::tool::month_split`.

fn main() -> std::process::ExitCode {
    waldur_usage::cli::main("month-split", waldur_usage::tool::month_split::run)
}
