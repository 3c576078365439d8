//! Request-body validation against the subset schema, with errors shaped as DRF shapes them
//! (`notes/waldur-api.md` §1.6): `{"field": ["msg"]}`, list items aligned with the input
//! (`{"usages": [{}, {"amount": ["..."]}]}`), `non_field_errors` for the body as a whole.

use serde_json::{Map, Value, json};

use super::super::openapi::{Mode, PathSeg, Problem, Spec, Violation};

/// DRF's message for a `DateTimeField` that cannot be parsed.
pub const DATETIME_FORMAT_MSG: &str = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

/// A DRF validation error body.
pub type DrfErrors = Value;

/// Parses and validates a JSON body for an operation. `Err` is the 400 body.
pub fn body(spec: &Spec, method: &str, template: &str, raw: &[u8]) -> Result<Value, DrfErrors> {
    let value: Value = if raw.is_empty() {
        // DRF treats an empty body as an empty form: every required field is missing.
        json!({})
    } else {
        serde_json::from_slice(raw)
            .map_err(|e| json!({"detail": format!("JSON parse error - {e}")}))?
    };
    let Some(schema) = spec.request_schema(method, template) else {
        return Ok(value);
    };
    let violations = spec.validate(schema, &value, Mode::Request);
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(drf_errors(&violations, &value))
    }
}

/// The DRF message for one violation.
pub fn message(v: &Violation, value: &Value) -> String {
    let at = lookup(value, &v.path);
    match &v.problem {
        Problem::Required => "This field is required.".into(),
        Problem::Null => "This field may not be null.".into(),
        Problem::Type { expected } => match expected.as_str() {
            "string" => "Not a valid string.".into(),
            "integer" => "A valid integer is required.".into(),
            "number" => "A valid number is required.".into(),
            "boolean" => "Must be a valid boolean.".into(),
            "array" => format!("Expected a list of items but got type \"{}\".", py_type(at)),
            _ => format!(
                "Invalid data. Expected a dictionary, but got {}.",
                py_type(at)
            ),
        },
        Problem::Enum => format!(
            "\"{}\" is not a valid choice.",
            at.and_then(Value::as_str).unwrap_or_default()
        ),
        Problem::Format(f) => match f.as_str() {
            "uuid" => "Must be a valid UUID.".into(),
            "date-time" => DATETIME_FORMAT_MSG.into(),
            "date" => "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.".into(),
            "uri" => "Enter a valid URL.".into(),
            "email" => "Enter a valid email address.".into(),
            other => format!("Invalid {other}."),
        },
        Problem::Pattern(p) if p.contains(r"\d{0,18}") => {
            decimal_message(at.and_then(Value::as_str).unwrap_or_default())
        }
        Problem::Pattern(_) => "This value does not match the required pattern.".into(),
        Problem::MinLength(1) => "This field may not be blank.".into(),
        Problem::MinLength(n) => format!("Ensure this field has at least {n} characters."),
        Problem::MaxLength(n) => format!("Ensure this field has no more than {n} characters."),
        Problem::MinItems(_) => "This list may not be empty.".into(),
        Problem::Unexpected => "Unexpected field.".into(),
        Problem::NoBranch => "Invalid value.".into(),
        Problem::BadRef(r) => format!("Schema error: unresolved {r}."),
    }
}

/// DRF `DecimalField(max_digits=20, decimal_places=2)` messages for a string that fails the
/// decimal pattern.
pub fn decimal_message(s: &str) -> String {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_only = !body.is_empty()
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        && body.matches('.').count() <= 1;
    if !digits_only {
        "A valid number is required.".into()
    } else if frac.len() > 2 {
        "Ensure that there are no more than 2 decimal places.".into()
    } else {
        "Ensure that there are no more than 18 digits before the decimal point.".into()
    }
}

fn py_type(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::String(_)) => "str",
        Some(Value::Array(_)) => "list",
        Some(Value::Object(_)) => "dict",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float",
        Some(Value::Number(_)) => "int",
        _ => "NoneType",
    }
}

fn lookup<'a>(value: &'a Value, path: &[PathSeg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        PathSeg::Key(k) => v.get(k),
        PathSeg::Index(i) => v.get(i),
    })
}

/// Builds the DRF error body for a set of violations of `value`.
pub fn drf_errors(violations: &[Violation], value: &Value) -> DrfErrors {
    let mut root = Value::Object(Map::new());
    for v in violations {
        let msg = message(v, value);
        if v.path.is_empty() {
            push_msg(&mut root, "non_field_errors", msg);
        } else {
            insert(&mut root, &v.path, Some(value), msg);
        }
    }
    root
}

fn push_msg(obj: &mut Value, key: &str, msg: String) {
    let list = obj
        .as_object_mut()
        .expect("error node is an object")
        .entry(key.to_string())
        .or_insert_with(|| json!([]));
    if let Some(items) = list.as_array_mut() {
        if !items.iter().any(|m| m.as_str() == Some(msg.as_str())) {
            items.push(Value::String(msg));
        }
    }
}

/// Inserts `msg` at `path` in the error tree `node` (an object), where `input` is the value
/// at the same place in the request (to size aligned lists).
fn insert(node: &mut Value, path: &[PathSeg], input: Option<&Value>, msg: String) {
    let PathSeg::Key(key) = &path[0] else {
        return push_msg(node, "non_field_errors", msg);
    };
    let input_child = input.and_then(|v| v.get(key));
    if path.len() == 1 {
        return push_msg(node, key, msg);
    }
    match &path[1] {
        PathSeg::Index(i) => {
            let len = input_child
                .and_then(Value::as_array)
                .map_or(i + 1, Vec::len);
            let map = node.as_object_mut().expect("error node is an object");
            let list = map.entry(key.clone()).or_insert_with(|| json!([]));
            // A plain message list already here (e.g. "This list may not be empty.") wins.
            let Some(items) = list.as_array_mut() else {
                return;
            };
            if items.iter().any(Value::is_string) {
                return;
            }
            while items.len() < len {
                items.push(json!({}));
            }
            let item_input = input_child.and_then(|v| v.get(i));
            if path.len() == 2 {
                // The item itself is wrong (e.g. not an object).
                items[*i] = json!({"non_field_errors": [msg]});
            } else {
                insert(&mut items[*i], &path[2..], item_input, msg);
            }
        }
        PathSeg::Key(_) => {
            let map = node.as_object_mut().expect("error node is an object");
            let child = map.entry(key.clone()).or_insert_with(|| json!({}));
            if child.is_object() {
                insert(child, &path[1..], input_child, msg);
            }
        }
    }
}
