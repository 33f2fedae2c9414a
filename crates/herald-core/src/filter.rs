//! Content filters: "only when …" rules on a payload's fields, without code.
//!
//! An endpoint may carry a list of rules; a message goes to it only when every
//! rule holds for its payload (after the date conversion, before any
//! transformation). A rule names a field by a dotted path (`member.status`,
//! `tags.0`; a key that itself contains a dot is written with `\.`), and
//! says what must hold of it: it equals a value, does not, contains a value
//! (a substring of a string, an element of a list), or exists.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One rule of a filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The field: a dotted path into the payload.
    pub field: String,
    pub op: Op,
    /// What `equals`, `notEquals` and `contains` compare with; `exists` takes
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    Equals,
    NotEquals,
    Contains,
    Exists,
}

/// Why a rule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the field is empty")]
    NoField,
    #[error("`{0}` needs a value")]
    NoValue(Op),
    #[error("`exists` takes no value")]
    ValueWithExists,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Equals => "equals",
            Op::NotEquals => "notEquals",
            Op::Contains => "contains",
            Op::Exists => "exists",
        })
    }
}

/// The most rules one endpoint may carry.
pub const MAX_RULES: usize = 20;

impl Rule {
    /// Checks the rule's form (the field is there; the value is there exactly
    /// when the operator takes one).
    pub fn check(&self) -> Result<(), RuleError> {
        if self.field.trim().is_empty() {
            return Err(RuleError::NoField);
        }
        match (self.op, &self.value) {
            (Op::Exists, Some(_)) => Err(RuleError::ValueWithExists),
            (Op::Exists, None) => Ok(()),
            (op, None) => Err(RuleError::NoValue(op)),
            (_, Some(_)) => Ok(()),
        }
    }

    /// Whether the rule holds for `payload`.
    pub fn holds(&self, payload: &Value) -> bool {
        let found = lookup(payload, &self.field);
        match (self.op, &self.value) {
            (Op::Exists, _) => found.is_some_and(|v| !v.is_null()),
            (Op::Equals, Some(want)) => found.is_some_and(|v| equal(v, want)),
            (Op::NotEquals, Some(want)) => !found.is_some_and(|v| equal(v, want)),
            (Op::Contains, Some(want)) => found.is_some_and(|v| contains(v, want)),
            // A rule without its value (refused by `check`) holds nothing.
            (_, None) => false,
        }
    }
}

/// Whether every rule holds for `payload` (no rules: it always passes).
pub fn passes(rules: &[Rule], payload: &Value) -> bool {
    rules.iter().all(|r| r.holds(payload))
}

/// The first rule that does not hold for `payload`, if any: what the log
/// names when a message is filtered out.
pub fn first_unmet<'a>(rules: &'a [Rule], payload: &Value) -> Option<&'a Rule> {
    rules.iter().find(|r| !r.holds(payload))
}

/// `member.status equals "active"`, `tags exists`: the rule in words.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.op, &self.value) {
            (Op::Exists, _) | (_, None) => write!(f, "{} {}", self.field, self.op),
            (op, Some(value)) => write!(f, "{} {op} {value}", self.field),
        }
    }
}

/// The value at a dotted path (`a.b.0`; `\.` is a dot inside a key).
fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    split_path(path)
        .iter()
        .try_fold(payload, |value, key| match value {
            Value::Object(map) => map.get(key.as_str()),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                keys.last_mut().expect("one key").push('.');
            }
            '.' => keys.push(String::new()),
            c => keys.last_mut().expect("one key").push(c),
        }
    }
    keys
}

/// Equality as a person means it: `"3"` equals `3`, `"true"` equals `true`
/// (a form field holds text), otherwise JSON equality.
fn equal(found: &Value, want: &Value) -> bool {
    if found == want {
        return true;
    }
    match (found, want) {
        (Value::String(s), other) | (other, Value::String(s)) if !other.is_string() => {
            scalar_text(other).is_some_and(|t| t == *s)
        }
        _ => false,
    }
}

fn contains(found: &Value, want: &Value) -> bool {
    match found {
        Value::String(s) => scalar_text(want).is_some_and(|w| s.contains(&w)),
        Value::Array(items) => items.iter().any(|item| equal(item, want)),
        _ => false,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_unmet_rule_is_named_in_words() {
        let rules = [
            rule("member.status", Op::Equals, Some(json!("active"))),
            rule("tags", Op::Exists, None),
        ];
        let payload = json!({"member": {"status": "active"}});
        let unmet = first_unmet(&rules, &payload).expect("tags is missing");
        assert_eq!(unmet.to_string(), "tags exists");
        assert_eq!(rules[0].to_string(), r#"member.status equals "active""#);
        let full = json!({"member": {"status": "active"}, "tags": []});
        assert_eq!(first_unmet(&rules, &full), None);
    }

    fn rule(field: &str, op: Op, value: Option<Value>) -> Rule {
        Rule {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn rules_hold_or_not_on_a_payload() {
        let payload = json!({
            "member": {"status": "Accepted", "title": "Product Manager", "score": 3},
            "tags": ["vip", "beta"],
            "dotted.key": {"x": true},
            "gone": null
        });
        let table = [
            (
                rule("member.status", Op::Equals, Some(json!("Accepted"))),
                true,
            ),
            (
                rule("member.status", Op::Equals, Some(json!("Pending"))),
                false,
            ),
            (
                rule("member.status", Op::NotEquals, Some(json!("Pending"))),
                true,
            ),
            (
                rule("member.nothing", Op::NotEquals, Some(json!("Pending"))),
                true,
            ),
            (rule("member.score", Op::Equals, Some(json!("3"))), true),
            (rule("member.score", Op::Equals, Some(json!(3))), true),
            (
                rule("member.title", Op::Contains, Some(json!("Manager"))),
                true,
            ),
            (
                rule("member.title", Op::Contains, Some(json!("manager"))),
                false,
            ),
            (rule("tags", Op::Contains, Some(json!("vip"))), true),
            (rule("tags", Op::Contains, Some(json!("gold"))), false),
            (rule("tags.1", Op::Equals, Some(json!("beta"))), true),
            (rule("tags.9", Op::Exists, None), false),
            (rule("member", Op::Exists, None), true),
            (rule("gone", Op::Exists, None), false),
            (
                rule("dotted\\.key.x", Op::Equals, Some(json!("true"))),
                true,
            ),
            (rule("member.status.deeper", Op::Exists, None), false),
        ];
        for (r, want) in table {
            assert_eq!(r.holds(&payload), want, "{r:?}");
        }
        assert!(passes(&[], &payload));
        let both = [
            rule("member.status", Op::Equals, Some(json!("Accepted"))),
            rule("tags", Op::Contains, Some(json!("gold"))),
        ];
        assert!(!passes(&both, &payload));
    }

    #[test]
    fn a_rule_is_checked_before_it_is_kept() {
        let table = [
            (rule("a", Op::Equals, Some(json!(1))), Ok(())),
            (rule("a", Op::Exists, None), Ok(())),
            (rule(" ", Op::Exists, None), Err(RuleError::NoField)),
            (
                rule("a", Op::Contains, None),
                Err(RuleError::NoValue(Op::Contains)),
            ),
            (
                rule("a", Op::Exists, Some(json!(1))),
                Err(RuleError::ValueWithExists),
            ),
        ];
        for (r, want) in table {
            assert_eq!(r.check(), want, "{r:?}");
        }
        let parsed: Rule =
            serde_json::from_str(r#"{"field": "member.status", "op": "notEquals", "value": "x"}"#)
                .unwrap();
        assert_eq!(parsed.op, Op::NotEquals);
        assert_eq!(
            RuleError::NoValue(Op::NotEquals).to_string(),
            "`notEquals` needs a value"
        );
    }
}
