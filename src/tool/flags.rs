//! The flags several tools share, each declared once: its doc string (the `--help` line), its
//! type and its parser.
//!
//! argh has no `flatten`, so [`tool_args!`](crate::tool::flags::tool_args) writes a tool's
//! whole argh struct: the tool lists its own fields as usual (private, each with a type that
//! has no top-level comma) and names a shared flag with `shared NAME,` where it belongs in
//! `--help`. The shared flags are `config`, `offering`,
//! `period`, `start`, `end`, `now`, `tz`, `input`, `log_level` and `version`; each is a `pub`
//! field of the same name and type in every tool that names it.
//!
//! ```text
//! tool_args! {
//!     /// Convert usage records.
//!     #[argh(error_code(64, "bad command line"))]
//!     pub struct Args {
//!         shared config,
//!         shared offering,
//!         /// a flag of this tool only
//!         #[argh(switch)]
//!         dry_run: bool,
//!         shared log_level,
//!         shared version,
//!     }
//! }
//! ```
//!
//! Values are read where they are used, by one function each: `--start` and `--end` by
//! [`period::parse_bound`](crate::period::parse_bound), `--now` by
//! [`period::parse_instant`](crate::period::parse_instant), `--tz` by
//! [`period::zone`](crate::period::zone), `--period` by
//! [`period::parse_month`](crate::period::parse_month).

/// Declares a tool's `argh::FromArgs` struct from its attributes, its own fields and the shared
/// flags it names with `shared NAME,` (see the [module documentation](self)).
macro_rules! tool_args {
    (
        $(#[$($attr:tt)*])*
        pub struct $name:ident { $($body:tt)* }
    ) => {
        $crate::tool::flags::tool_args!(@fields [$(#[$($attr)*])* $name] [] $($body)*);
    };

    // All fields gathered: write the struct. (Everything is passed on as plain tokens: argh
    // reads the types and attributes by their spelling, which `ty` or `meta` fragments hide.)
    (@fields [$(#[$($attr:tt)*])* $name:ident] [$($field:tt)*]) => {
        #[derive(argh::FromArgs)]
        $(#[$($attr)*])*
        pub struct $name { $($field)* }
    };

    // The shared flags.
    (@fields $head:tt [$($field:tt)*] shared config, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// the waldur-site-agent config (default /etc/waldur/waldur-site-agent-config.yaml)
            #[argh(option, short = 'c')]
            pub config: Option<std::path::PathBuf>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared offering, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// the offering to report (name or UUID) when the config has several
            #[argh(option)]
            pub offering: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared period, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// one billing month, YYYY-MM (instead of period records on stdin)
            #[argh(option)]
            pub period: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared start, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// first day, YYYY-MM-DD or YYYY-MM (its 1st): every month from --start to --end is a
            /// period
            #[argh(option)]
            pub start: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared end, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// last day (inclusive), YYYY-MM-DD or YYYY-MM (its last day)
            #[argh(option)]
            pub end: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared now, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// take this instant as now, RFC 3339 with offset, e.g. 2024-03-01T00:10:00+01:00
            /// (for tests and reruns; default: the clock)
            #[argh(option)]
            pub now: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared tz, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// IANA time zone of the months, e.g. Europe/Tallinn (default: the config's timezone,
            /// or UTC)
            #[argh(option)]
            pub tz: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared input, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// parse saved sacct --parsable2 output from FILE (or - for stdin) instead of running
            /// sacct
            #[argh(option)]
            pub input: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared log_level, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// log level: error, warning, info or debug (default info; logs go to stderr)
            #[argh(option)]
            pub log_level: Option<String>,
        ] $($rest)*);
    };
    (@fields $head:tt [$($field:tt)*] shared version, $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)*
            /// print the version and exit
            #[argh(switch)]
            pub version: bool,
        ] $($rest)*);
    };

    // A field of the tool's own, written as in any argh struct (private, type without a
    // comma): its attributes and name, then its type token by token up to the comma.
    (@fields $head:tt [$($field:tt)*]
        $(#[$($meta:tt)*])* $fname:ident : $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@type $head [$($field)*] [$(#[$($meta)*])* $fname:] $($rest)*);
    };
    (@type $head:tt [$($field:tt)*] [$($own:tt)*] , $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@fields $head [$($field)* $($own)*,] $($rest)*);
    };
    (@type $head:tt [$($field:tt)*] [$($own:tt)*] $next:tt $($rest:tt)*) => {
        $crate::tool::flags::tool_args!(@type $head [$($field)*] [$($own)* $next] $($rest)*);
    };
}

pub(crate) use tool_args;
