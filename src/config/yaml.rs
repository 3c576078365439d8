//! The hand-written YAML walker: a value with its key path, so that every error names the
//! file, the key and what was expected. It knows YAML shapes, not what the keys mean.

use serde_norway::Value;

use super::ConfigError;

/// Deepest nesting of YAML flow collections (`[`, `{`) accepted.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The line where flow brackets first nest deeper than [`MAX_FLOW_DEPTH`], outside quotes and
/// comments. The YAML parser's time grows badly with such nesting; nothing real needs it.
pub(super) fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if previous.is_whitespace() => break,
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    None
}

/// A YAML value together with its key path, for error messages.
pub(super) struct Node<'a> {
    pub(super) file: &'a str,
    pub(super) path: String,
    pub(super) value: &'a Value,
}

impl<'a> Node<'a> {
    pub(super) fn err(&self, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            key: if self.path.is_empty() {
                "(top level)".into()
            } else {
                self.path.clone()
            },
            message: message.into(),
        }
    }

    pub(super) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn child_err(&self, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            key: self.child_path(key),
            message: message.into(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self.value {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("{b}"),
            Value::Number(n) => format!("{n}"),
            Value::String(s) => format!("{s:?}"),
            Value::Sequence(_) => "a list".into(),
            Value::Mapping(_) => "a mapping".into(),
            Value::Tagged(_) => "a tagged value".into(),
        }
    }

    pub(super) fn expect_mapping(&self) -> Result<(), ConfigError> {
        match self.value {
            Value::Mapping(_) => Ok(()),
            _ => Err(self.err(&format!(
                "expected a mapping of keys, found {}",
                self.describe()
            ))),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<Node<'a>> {
        let Value::Mapping(map) = self.value else {
            return None;
        };
        map.get(key).map(|value| Node {
            file: self.file,
            path: self.child_path(key),
            value,
        })
    }

    pub(super) fn at_index(&self, i: usize) -> Node<'a> {
        let Value::Sequence(seq) = self.value else {
            unreachable!("checked by sequence()")
        };
        Node {
            file: self.file,
            path: format!("{}[{i}]", self.path),
            value: &seq[i],
        }
    }

    pub(super) fn at_key(&self, key: &str, value: &'a Value) -> Node<'a> {
        Node {
            file: self.file,
            path: self.child_path(key),
            value,
        }
    }

    pub(super) fn sequence(&self) -> Result<&'a Vec<Value>, ConfigError> {
        match self.value {
            Value::Sequence(s) => Ok(s),
            _ => Err(self.err(&format!("expected a list, found {}", self.describe()))),
        }
    }

    pub(super) fn entries(&self) -> Result<Vec<(String, &'a Value)>, ConfigError> {
        match self.value {
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| match k {
                    Value::String(s) => Ok((s.clone(), v)),
                    Value::Number(n) => Ok((n.to_string(), v)),
                    _ => Err(self.err("expected string keys")),
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.err(&format!(
                "expected a mapping of keys, found {}",
                self.describe()
            ))),
        }
    }

    pub(super) fn string(&self) -> Result<String, ConfigError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.err(&format!("expected a string, found {}", self.describe()))),
        }
    }

    pub(super) fn integer(&self) -> Result<i64, ConfigError> {
        match self.value {
            Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                Ok(s.trim().parse().unwrap_or_default())
            }
            _ => Err(self.err(&format!(
                "expected a whole number, found {}",
                self.describe()
            ))),
        }
    }

    pub(super) fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(self.err(&format!(
                    "expected true or false, found {}",
                    self.describe()
                ))),
            },
            _ => Err(self.err(&format!(
                "expected true or false, found {}",
                self.describe()
            ))),
        }
    }
}
