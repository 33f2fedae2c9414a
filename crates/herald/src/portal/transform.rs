//! The endpoint form's message format and content filter: the ready-made
//! formats as the form offers them, the filter rules as a person writes them
//! (`member.status = active`), and the preview of what an example becomes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use herald_core::dates::{convert_dates, DateFormat};
use herald_core::filter::{self, Op, Rule};
use herald_store::EventType;
use herald_transform::Outcome;
use serde_json::{json, Value};

use super::form::{error_message, Values};
use super::request::{catalog_types, posted};
use super::session::Session;
use super::PortalResult;
use crate::catalog::formats::{self, Format};
use crate::service::transformations::{check_filters, format_code, simulate};
use crate::service::Herald;

/// The format select's value for code written by hand.
pub(super) const CUSTOM: &str = "custom";

/// A rule as the portal writes it: `member.status = active`,
/// `tags exists`, `member.email contains @acme.com`, `plan != free`.
pub(super) fn rule_line(rule: &Rule) -> String {
    let op = match rule.op {
        Op::Equals => "=",
        Op::NotEquals => "!=",
        Op::Contains => "contains",
        Op::Exists => return format!("{} exists", rule.field),
    };
    let value = match &rule.value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    format!("{} {op} {value}", rule.field)
}

/// The filter text, one rule per line: `FIELD = VALUE`, `FIELD != VALUE`,
/// `FIELD contains VALUE` or `FIELD exists`. A value that reads as JSON
/// (`3`, `true`, `"quoted"`) is taken as such, anything else as text. An
/// error names the line.
pub(super) fn parse_filters(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || {
            format!("line {line:?} is not \"field = value\", \"field != value\", \"field contains value\" or \"field exists\"")
        };
        let (field, rest) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let rest = rest.trim_start();
        let (op, value) = if rest == "exists" {
            (Op::Exists, None)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (Op::NotEquals, Some(v))
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Equals, Some(v))
        } else if let Some(v) = rest.strip_prefix("contains ") {
            (Op::Contains, Some(v))
        } else {
            return Err(bad());
        };
        let value = match value.map(str::trim) {
            None => None,
            Some("") => return Err(bad()),
            Some(v) => Some(match serde_json::from_str::<Value>(v) {
                Ok(json @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                    json
                }
                _ => Value::String(v.to_string()),
            }),
        };
        rules.push(Rule {
            field: field.to_string(),
            op,
            value,
        });
    }
    Ok(rules)
}

/// Every ready-made format with its code for this catalog.
pub(super) fn format_codes(types: &[EventType]) -> Vec<(Format, String)> {
    let summaries = formats::summaries(types);
    formats::builtin()
        .into_iter()
        .map(|f| {
            let code = formats::code(&f, &summaries);
            (f, code)
        })
        .collect()
}

/// What an endpoint's running code is, in words: a ready-made format it
/// still runs unchanged, or custom code.
pub(super) fn format_of(types: &[EventType], code: &str) -> String {
    format_codes(types)
        .into_iter()
        .find(|(_, c)| c == code)
        .map_or("Custom code".to_string(), |(f, _)| {
            format_name(&f.id).to_string()
        })
}

/// A format's name in the select.
pub(super) fn format_name(id: &str) -> &str {
    match id {
        "slack" => "Slack message",
        "discord" => "Discord message",
        "teams" => "Microsoft Teams card",
        "google-chat" => "Google Chat card",
        "sheet-row" => "Sheet row (Zapier, Make, Google Sheets)",
        other => other,
    }
}

/// `POST /portal/endpoints/preview` (from the form's script): what the
/// endpoint would send for an event type's example, with the date format,
/// filter and transformation as typed — nothing is sent or saved. Answers
/// JSON: `{ok, url, method, body}`, `{ok, skipped}` or `{ok: false, error}`.
pub async fn preview_delivery(
    State(state): State<Herald>,
    session: Session,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let (form, app) = posted(&state, &session, &body).await?;
    let v = Values::from_form(&form);
    let answer = |value: Value| Ok(axum::Json(value).into_response());
    let event_type = form.get("preview_event_type").unwrap_or_default();
    let types = catalog_types(&state, &session).await?;
    let Some(et) = types.iter().find(|t| t.name == event_type) else {
        return answer(json!({"ok": false, "error": "Choose an event type to preview."}));
    };
    let Some(mut payload) = et.example(0).cloned() else {
        return answer(json!({"ok": false, "error": "This event type has no example."}));
    };
    let format = DateFormat::parse(&v.date_format).unwrap_or_default();
    if let Some(schema) = et.latest_schema() {
        convert_dates(&mut payload, schema, format);
    }
    let rules = match parse_filters(&v.filters)
        .and_then(|r| check_filters("filters", r).map_err(|e| error_message(&e)))
    {
        Ok(rules) => rules,
        Err(why) => return answer(json!({"ok": false, "error": why})),
    };
    if let Some(rule) = filter::first_unmet(&rules, &payload) {
        return answer(
            json!({"ok": true, "skipped": format!("Not sent: {rule} does not hold for this example.")}),
        );
    }
    let code = match v.format.as_str() {
        "" => None,
        CUSTOM => Some(v.code.clone()),
        id => match format_code(&state, &app.org_id, id).await {
            Ok(code) => Some(code),
            Err(e) => return answer(json!({"ok": false, "error": error_message(&e)})),
        },
    };
    let url = v.url.trim().to_string();
    let Some(code) = code else {
        return answer(json!({
            "ok": true, "url": url, "method": "POST",
            "body": serde_json::to_string_pretty(&payload).unwrap_or_default(),
        }));
    };
    match simulate(
        &state,
        &code,
        et.name.clone(),
        payload,
        url,
        BTreeMap::new(),
    )
    .await
    {
        Ok(Outcome::Cancel) => answer(
            json!({"ok": true, "skipped": "Not sent: the code cancels this event (webhook.cancel)."}),
        ),
        Ok(Outcome::Send {
            payload,
            url,
            method,
        }) => answer(json!({
            "ok": true, "url": url, "method": method,
            "body": serde_json::to_string_pretty(&payload).unwrap_or_default(),
        })),
        Err(e) => answer(json!({"ok": false, "error": error_message(&e)})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_lines_read_and_write_back() {
        let rules = parse_filters(
            "member.status = active\n\n  plan != free\nmember.email contains @acme.com\ntags exists\nage = 3\n",
        )
        .unwrap();
        let ops: Vec<Op> = rules.iter().map(|r| r.op).collect();
        assert_eq!(
            ops,
            [
                Op::Equals,
                Op::NotEquals,
                Op::Contains,
                Op::Exists,
                Op::Equals
            ]
        );
        assert_eq!(rules[0].value, Some(json!("active")));
        assert_eq!(rules[2].value, Some(json!("@acme.com")));
        assert_eq!(rules[3].value, None);
        assert_eq!(rules[4].value, Some(json!(3)));
        let written: Vec<String> = rules.iter().map(rule_line).collect();
        assert_eq!(
            written,
            [
                "member.status = active",
                "plan != free",
                "member.email contains @acme.com",
                "tags exists",
                "age = 3"
            ]
        );
        for bad in ["member.status", "member.status is active", "x ="] {
            let why = parse_filters(bad).unwrap_err();
            assert!(why.contains(bad), "{why}");
        }
    }
}
