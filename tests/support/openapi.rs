//! A small validator for the Waldur OpenAPI subset
//! (`tests/fixtures/waldur-api/openapi-usage-subset.yaml`).
//!
//! It covers what the usage-reporting contract needs and what is cheap to check: `$ref`,
//! `type`, `required`, `properties`, `additionalProperties`, `items`, `enum`, `nullable`,
//! `allOf`/`anyOf`/`oneOf`, string lengths, `pattern`, and the formats `uuid`, `date`,
//! `date-time`, `uri` and `email`.
//!
//! Two directions differ where the wire differs from the schema (see `notes/waldur-api.md`
//! §1.3 and the subset README):
//! - [`Mode::Request`]: UUIDs may be hex or hyphenated, date-times may be naive (DRF reads
//!   them in the server time zone);
//! - [`Mode::Response`]: UUIDs must be 32 lowercase hex digits (how Waldur renders them) and
//!   date-times must carry an offset.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::pattern::Pattern;

/// Path of the schema file, inside the crate.
pub const SUBSET_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/waldur-api/openapi-usage-subset.yaml"
);

/// Directory of the example bodies copied from `shared/waldur-api/examples`.
pub const EXAMPLES_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/waldur-api/examples"
);

/// Which side of the exchange a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A body the client sends.
    Request,
    /// A body the server answers.
    Response,
}

/// One step into a JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// What was wrong with a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A required property is missing.
    Required,
    /// `null` where the schema is not nullable.
    Null,
    /// Wrong JSON type; `expected` is the schema type.
    Type { expected: String },
    /// Not one of the enumerated values.
    Enum,
    /// A string `format` was not met.
    Format(String),
    /// A `pattern` was not met.
    Pattern(String),
    /// Shorter than `minLength`.
    MinLength(u64),
    /// Longer than `maxLength`.
    MaxLength(u64),
    /// Fewer items than `minItems`.
    MinItems(u64),
    /// A property not allowed by `additionalProperties: false`.
    Unexpected,
    /// No branch of an `anyOf`/`oneOf` matched (or more than one `oneOf` branch did).
    NoBranch,
    /// A `$ref` that does not resolve (a bug in the schema or in the caller).
    BadRef(String),
}

/// One violation, with the path of the offending value.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Where in the value.
    pub path: Vec<PathSeg>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$")?;
        for seg in &self.path {
            match seg {
                PathSeg::Key(k) => write!(f, ".{k}")?,
                PathSeg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        write!(f, ": {:?}", self.problem)
    }
}

/// The loaded OpenAPI document.
pub struct Spec {
    doc: Value,
    patterns: Mutex<HashMap<String, Option<Pattern>>>,
}

impl Spec {
    /// The subset schema, loaded once per process.
    pub fn subset() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| Spec::load(SUBSET_PATH).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Loads an OpenAPI YAML file.
    pub fn load(path: &str) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let doc: Value = serde_norway::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        Ok(Spec {
            doc,
            patterns: Mutex::new(HashMap::new()),
        })
    }

    /// A named component schema (`#/components/schemas/NAME`).
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc.get("components")?.get("schemas")?.get(name)
    }

    /// The operation object for a method and a path template such as
    /// `/api/marketplace-component-usages/{uuid}/set_user_usage/`.
    pub fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc
            .get("paths")?
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// The path template that a concrete path matches (`{param}` matches one segment).
    pub fn template_for(&self, path: &str) -> Option<&str> {
        let paths = self.doc.get("paths")?.as_object()?;
        let segs: Vec<&str> = path.split('/').collect();
        // Prefer a template with fewer parameters (`set_usage/` over `{uuid}/`).
        let mut best: Option<(&str, usize)> = None;
        for template in paths.keys() {
            let tsegs: Vec<&str> = template.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut params = 0;
            let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') && t.ends_with('}') {
                    params += 1;
                    !s.is_empty()
                } else {
                    t == s
                }
            });
            if ok && best.is_none_or(|(_, p)| params < p) {
                best = Some((template.as_str(), params));
            }
        }
        best.map(|(t, _)| t)
    }

    /// The JSON request-body schema of an operation.
    pub fn request_schema(&self, method: &str, template: &str) -> Option<&Value> {
        self.operation(method, template)?
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// The JSON response-body schema of an operation for a status (following a response `$ref`).
    /// `None` when that status is not documented or documents no body.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<&Value> {
        let responses = self.operation(method, template)?.get("responses")?;
        let mut response = responses.get(status.to_string())?;
        if let Some(r) = response.get("$ref").and_then(Value::as_str) {
            response = self.resolve(r)?;
        }
        response
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// Whether the operation documents `status` at all.
    pub fn documents_status(&self, method: &str, template: &str, status: u16) -> bool {
        self.operation(method, template)
            .and_then(|op| op.get("responses"))
            .and_then(|r| r.get(status.to_string()))
            .is_some()
    }

    /// Resolves a local `$ref` such as `#/components/schemas/X`.
    pub fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.doc.pointer(pointer)
    }

    /// Validates `value` against `schema`; an empty result means valid.
    pub fn validate(&self, schema: &Value, value: &Value, mode: Mode) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.check(schema, value, mode, &mut path, &mut out);
        out
    }

    /// Validates against a named component schema.
    pub fn validate_named(&self, name: &str, value: &Value, mode: Mode) -> Vec<Violation> {
        match self.schema(name) {
            Some(schema) => self.validate(schema, value, mode),
            None => vec![Violation {
                path: vec![],
                problem: Problem::BadRef(name.to_string()),
            }],
        }
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        mode: Mode,
        path: &mut Vec<PathSeg>,
        out: &mut Vec<Violation>,
    ) {
        let push = |out: &mut Vec<Violation>, path: &[PathSeg], problem| {
            out.push(Violation {
                path: path.to_vec(),
                problem,
            })
        };
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(r) {
                Some(target) => self.check(target, value, mode, path, out),
                None => push(out, path, Problem::BadRef(r.to_string())),
            }
            return;
        }
        let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
        if value.is_null() && nullable {
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, value, mode, path, out);
            }
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let matching = branches
                    .iter()
                    .filter(|b| self.validate(b, value, mode).is_empty())
                    .count();
                let ok = if exactly_one {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    push(out, path, Problem::NoBranch);
                }
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                push(
                    out,
                    path,
                    if value.is_null() {
                        Problem::Null
                    } else {
                        Problem::Enum
                    },
                );
                return;
            }
        }
        let Some(ty) = schema.get("type").and_then(Value::as_str) else {
            return;
        };
        if value.is_null() {
            push(out, path, Problem::Null);
            return;
        }
        let type_ok = match ty {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !type_ok {
            push(
                out,
                path,
                Problem::Type {
                    expected: ty.to_string(),
                },
            );
            return;
        }
        match value {
            Value::String(s) => self.check_string(schema, s, mode, path, out),
            Value::Array(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < min {
                        push(out, path, Problem::MinItems(min));
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(PathSeg::Index(i));
                        self.check(item_schema, item, mode, path, out);
                        path.pop();
                    }
                }
            }
            Value::Object(map) => {
                let props = schema.get("properties").and_then(Value::as_object);
                if let Some(required) = schema.get("required").and_then(Value::as_array) {
                    for name in required.iter().filter_map(Value::as_str) {
                        if !map.contains_key(name) {
                            path.push(PathSeg::Key(name.to_string()));
                            push(out, path, Problem::Required);
                            path.pop();
                        }
                    }
                }
                let additional = schema.get("additionalProperties");
                for (key, item) in map {
                    path.push(PathSeg::Key(key.clone()));
                    match props.and_then(|p| p.get(key)) {
                        Some(prop_schema) => self.check(prop_schema, item, mode, path, out),
                        None => match additional {
                            Some(Value::Bool(false)) => push(out, path, Problem::Unexpected),
                            Some(extra @ Value::Object(_)) => {
                                self.check(extra, item, mode, path, out)
                            }
                            _ => {}
                        },
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn check_string(
        &self,
        schema: &Value,
        s: &str,
        mode: Mode,
        path: &[PathSeg],
        out: &mut Vec<Violation>,
    ) {
        let mut push = |problem| {
            out.push(Violation {
                path: path.to_vec(),
                problem,
            })
        };
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                push(Problem::MinLength(min));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                push(Problem::MaxLength(max));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if !self.matches(pattern, s) {
                push(Problem::Pattern(pattern.to_string()));
            }
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            let ok = match format {
                "uuid" => match mode {
                    Mode::Request => normalize_uuid(s).is_some(),
                    Mode::Response => is_hex_uuid(s),
                },
                "date" => s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok(),
                "date-time" => match parse_iso_datetime(s) {
                    Some(dt) => mode == Mode::Request || dt.offset_seconds.is_some(),
                    None => false,
                },
                "uri" => s.starts_with("http://") || s.starts_with("https://"),
                "email" => s.contains('@'),
                _ => true,
            };
            if !ok {
                push(Problem::Format(format.to_string()));
            }
        }
    }

    fn matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        let compiled = cache.entry(pattern.to_string()).or_insert_with(|| {
            Pattern::new(pattern)
                .map_err(|why| {
                    // Not checked rather than failing every value; said once a pattern.
                    eprintln!("openapi: the pattern {pattern:?} is not checked: {why}");
                })
                .ok()
        });
        compiled.as_ref().is_none_or(|p| p.is_match(s))
    }
}

/// `true` for 32 lowercase hex digits, the form Waldur renders.
pub fn is_hex_uuid(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Accepts the hex or the hyphenated form (any case) and returns 32 lowercase hex digits.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let hex: String = match lower.len() {
        32 => lower,
        36 => {
            let b = lower.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            lower.replace('-', "")
        }
        _ => return None,
    };
    is_hex_uuid(&hex).then_some(hex)
}

/// An ISO-8601 date-time as DRF accepts it:
/// `YYYY-MM-DD[T ]hh:mm[:ss[.ffffff]][Z|±HH:MM|±HHMM|±HH]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IsoDateTime {
    /// The wall-clock part.
    pub civil: jiff::civil::DateTime,
    /// The offset east of UTC in seconds, `None` for a naive value.
    pub offset_seconds: Option<i32>,
}

/// Parses a date-time in the grammar DRF's `DateTimeField` accepts; `None` when it does not.
pub fn parse_iso_datetime(s: &str) -> Option<IsoDateTime> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = s.get(range)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute) = (digits(11..13)?, digits(14..16)?);
    let mut i = 16;
    let (mut second, mut nanos) = (0, 0);
    if b.get(i) == Some(&b':') {
        second = digits(i + 1..i + 3)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start || end - start > 6 {
                return None;
            }
            let frac = &s[start..end];
            nanos = format!("{frac:0<9}").parse().ok()?;
            i = end;
        }
    }
    let offset_seconds = match b.get(i) {
        None => None,
        Some(b'Z') if i + 1 == b.len() => Some(0),
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &s[i + 1..];
            let (h, m) = match rest.len() {
                2 => (digits(i + 1..i + 3)?, 0),
                4 => (digits(i + 1..i + 3)?, digits(i + 3..i + 5)?),
                5 if rest.as_bytes()[2] == b':' => (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 3600 + m * 60;
            Some(if sign == b'-' { -total } else { total })
        }
        Some(_) => return None,
    };
    let civil = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(IsoDateTime {
        civil,
        offset_seconds,
    })
}

/// Reads one example body from the fixtures.
pub fn example(name: &str) -> Value {
    let path = format!("{EXAMPLES_DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
