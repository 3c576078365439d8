//! One `usage` line parsed in place: the fast path of [`super::input`].
//!
//! A usage line is read into borrowed strings (escaped ones are unescaped into owned ones),
//! with the same fields, types and checks as [`crate::records::UsageRecord`]: `user` must be
//! present (it may be null), `jobs` a non-negative integer, `components` an object of strings
//! whose keys are distinct, and `kind` must come once. Whatever this parser does not take,
//! the caller hands to [`crate::records::Record::from_json`], so that every error reads
//! exactly as before.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// A string, borrowed from the line when it holds no escapes.
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A `usage` record, borrowed from its line.
#[derive(Debug, Deserialize)]
pub struct UsageLine<'a> {
    #[serde(borrow)]
    kind: Text<'a>,
    /// `YYYY-MM`.
    #[serde(borrow)]
    period: Text<'a>,
    /// The account as written.
    #[serde(borrow)]
    account: Text<'a>,
    /// The user; `None` for the account total.
    #[serde(borrow, deserialize_with = "present_or_null")]
    user: Option<Text<'a>>,
    #[allow(dead_code)] // checked like UsageRecord's, not used
    jobs: u64,
    /// Component -> amount text, in the order written.
    #[serde(borrow, deserialize_with = "distinct")]
    components: Vec<(Text<'a>, Text<'a>)>,
}

impl<'a> UsageLine<'a> {
    /// Parse `text` (one trimmed line) when it is a well-formed `usage` record; `None`
    /// otherwise (then the slow path names what is wrong).
    pub fn parse(text: &'a str) -> Option<UsageLine<'a>> {
        if !text.starts_with("{\"kind\":\"usage\"") {
            return None;
        }
        let line: UsageLine<'a> = serde_json::from_str(text).ok()?;
        (line.kind.0 == "usage").then_some(line)
    }

    /// `YYYY-MM` as written.
    pub fn period(&self) -> &str {
        &self.period.0
    }

    /// The account as written.
    pub fn account(&self) -> &str {
        &self.account.0
    }

    /// The user as written, `None` for the account total.
    pub fn user(&self) -> Option<&str> {
        self.user.as_ref().map(|u| &*u.0)
    }

    /// (component, amount text) in the order written.
    pub fn components(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.components.iter().map(|(k, v)| (&*k.0, &*v.0))
    }
}

/// A field that must be present, though it may be null.
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// An object of strings whose keys are distinct.
fn distinct<'de, D, K, V>(deserializer: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: de::Deserializer<'de>,
    K: Deserialize<'de> + AsRef<str>,
    V: Deserialize<'de>,
{
    struct Pairs<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + AsRef<str>, V: Deserialize<'de>> Visitor<'de> for Pairs<K, V> {
        type Value = Vec<(K, V)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(K, V)> = Vec::with_capacity(4);
            while let Some(key) = map.next_key::<K>()? {
                if out.iter().any(|(k, _)| k.as_ref() == key.as_ref()) {
                    return Err(de::Error::custom("a key comes twice"));
                }
                let value = map.next_value()?;
                out.push((key, value));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Pairs(std::marker::PhantomData))
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Record;

    #[test]
    fn takes_what_the_record_parser_takes_and_leaves_the_rest_to_it() {
        let good = r#"{"kind":"usage","period":"2024-03","account":"a\"b","user":null,"jobs":1,"components":{"cpu":"1.00","mem":"2"},"extra":[1]}"#;
        let line = UsageLine::parse(good).unwrap();
        assert_eq!(line.account(), "a\"b");
        assert_eq!(line.user(), None);
        let comps: Vec<_> = line.components().collect();
        assert_eq!(comps, [("cpu", "1.00"), ("mem", "2")]);
        let Ok(Record::Usage(u)) = Record::from_json(good) else {
            panic!()
        };
        assert_eq!(u.account, "a\"b");
        for bad in [
            r#"{"kind":"usage","period":"2024-03","account":"a","jobs":1,"components":{}}"#,
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":-1,"components":{}}"#,
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{"c":"1","c":"2"}}"#,
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{"c":1}}"#,
            r#"{"kind":"usage","kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{}}"#,
            r#"{"kind":"usage","period":"2024-03","period":"2024-04","account":"a","user":null,"jobs":1,"components":{}}"#,
            r#"{"kind":"usage","period":"2024-03","account":"a","user":null,"jobs":1,"components":{}} x"#,
        ] {
            assert!(UsageLine::parse(bad).is_none(), "{bad}");
            assert!(Record::from_json(bad).is_err(), "{bad}");
        }
    }
}
