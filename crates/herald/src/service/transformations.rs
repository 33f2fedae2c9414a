//! An endpoint's transformation and content filter: the rules they follow when
//! saved, the dry run (simulate, the portal's preview), and the ready-made
//! formats as code. The worker runs them (`dispatch/deliver.rs`).

use std::collections::BTreeMap;

use chrono::Utc;
use herald_core::filter::{Rule, MAX_RULES};
use herald_store::{Application, Endpoint};
use herald_transform::{Outcome, Webhook};
use serde_json::Value;

use super::{endpoints, Error, FieldError, Herald, Result};
use crate::catalog::formats;

/// Svix's bounds on a transformation's code.
pub const CODE_MIN_CHARS: usize = 10;
pub const CODE_MAX_CHARS: usize = 51_200;
/// Variables one endpoint may keep, and the size of each.
const MAX_VARIABLES: usize = 50;
const MAX_VARIABLE_CHARS: usize = 4096;

/// A change to an endpoint's transformation; `None` leaves that part as it is.
#[derive(Debug, Default)]
pub struct Change {
    /// `Some(None)`: remove the code.
    pub code: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// `Some(None)`: remove the variables.
    pub variables: Option<Option<BTreeMap<String, String>>>,
}

/// Checks a content filter as given (`field` names where it was, for the
/// error: `filters`).
pub fn check_filters(field: &str, rules: Vec<Rule>) -> Result<Vec<Rule>> {
    if rules.len() > MAX_RULES {
        return Err(Error::field(
            &[field],
            format!("at most {MAX_RULES} rules, not {}", rules.len()),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.check().map_err(|e| {
            Error::Validation(vec![FieldError::body(
                &[field, &i.to_string()],
                e.to_string(),
            )])
        })?;
    }
    Ok(rules)
}

/// Whether `code` may be saved: within Svix's bounds, and it compiles and
/// defines `handler` (else a 422 with the compiler's message).
pub async fn check_code(herald: &Herald, field: &str, code: &str) -> Result<()> {
    let chars = code.chars().count();
    if !(CODE_MIN_CHARS..=CODE_MAX_CHARS).contains(&chars) {
        return Err(Error::field(
            &[field],
            format!("must be {CODE_MIN_CHARS} to {CODE_MAX_CHARS} characters long, not {chars}"),
        ));
    }
    herald
        .transformer
        .check(code)
        .await
        .map_err(|failure| Error::field(&[field], failure.to_string()))
}

fn check_variables(variables: &BTreeMap<String, String>) -> Result<()> {
    if variables.len() > MAX_VARIABLES {
        return Err(Error::field(
            &["variables"],
            format!("at most {MAX_VARIABLES} variables"),
        ));
    }
    for (name, value) in variables {
        if name.is_empty() || value.chars().count() > MAX_VARIABLE_CHARS {
            return Err(Error::Validation(vec![FieldError::body(
                &["variables", name],
                format!("a name, and a value of at most {MAX_VARIABLE_CHARS} characters"),
            )]));
        }
    }
    Ok(())
}

/// Applies `change` to the endpoint's transformation and saves it. Enabling
/// needs code; code that does not compile is refused whatever else changes.
pub async fn update(
    herald: &Herald,
    app: &Application,
    ep: &mut Endpoint,
    change: Change,
) -> Result<()> {
    let mut t = ep.transformation.clone();
    if let Some(code) = change.code {
        if let Some(code) = &code {
            check_code(herald, "code", code).await?;
        }
        t.code = code;
    }
    if let Some(variables) = change.variables {
        let variables = variables.unwrap_or_default();
        check_variables(&variables)?;
        t.variables = variables;
    }
    if let Some(enabled) = change.enabled {
        t.enabled = enabled;
    }
    if t.enabled && t.code.is_none() {
        return Err(Error::field(
            &["enabled"],
            "an endpoint without transformation code cannot enable it",
        ));
    }
    let now = Utc::now();
    t.updated_at = Some(now);
    ep.transformation = t;
    ep.updated_at = now;
    endpoints::update(herald, app, ep).await
}

/// What a transformation would make of a delivery: the dry run behind
/// Svix's `transformation/simulate` and the portal's preview. Nothing is
/// sent; a failure is a 422 saying what went wrong.
pub async fn simulate(
    herald: &Herald,
    code: &str,
    event_type: String,
    payload: Value,
    url: String,
    variables: BTreeMap<String, String>,
) -> Result<Outcome> {
    check_code(herald, "code", code).await?;
    let webhook = Webhook {
        event_type,
        payload,
        url,
        method: "POST".into(),
        variables,
    };
    herald
        .transformer
        .run(code.into(), webhook)
        .await
        .map_err(|failure| Error::field(&["code"], failure.to_string()))
}

/// The code of the ready-made format `id` for the organisation's catalog
/// (its event types' sentences), or a 422 naming the formats there are.
pub async fn format_code(herald: &Herald, org_id: &str, id: &str) -> Result<String> {
    let format = formats::find(id).ok_or_else(|| {
        let known: Vec<String> = formats::builtin().into_iter().map(|f| f.id).collect();
        Error::field(
            &["format"],
            format!("unknown format; Herald has {}", known.join(", ")),
        )
    })?;
    let event_types: Vec<_> = herald
        .store
        .cached_event_types(org_id, super::messages::LOOKUP_FRESHNESS)
        .await?
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    Ok(formats::code(&format, &formats::summaries(&event_types)))
}
