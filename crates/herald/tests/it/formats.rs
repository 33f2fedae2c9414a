//! The ready-made formats, applied to every example of the Spot catalog, give
//! bodies of the shape each target documents (a JSON Schema per target, in
//! `tests/format-shapes/`, written from its docs), with the event's sentence.

use herald::catalog::formats;
use herald_core::schema::validate;
use herald_transform::{Engine, Limits, Outcome, Webhook};
use serde_json::Value;

fn shape(id: &str) -> Value {
    let path = format!(
        "{}/tests/format-shapes/{id}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn every_format_turns_every_catalog_example_into_its_targets_shape() {
    let now = chrono::Utc::now();
    let event_types: Vec<_> = herald::catalog::builtin()
        .unwrap()
        .iter()
        .map(|e| e.to_event_type("org_herald", now))
        .collect();
    let summaries = formats::summaries(&event_types);
    assert_eq!(summaries.len(), 14, "every Spot event type has a sentence");
    let mut engine = Engine::new(Limits::default()).unwrap();
    for format in formats::builtin() {
        let code = formats::code(&format, &summaries);
        let schema = shape(&format.id);
        for et in &event_types {
            let example = et.example(0).cloned().unwrap();
            let webhook = Webhook {
                event_type: et.name.clone(),
                payload: example,
                url: "https://hooks.example.com/in".into(),
                method: "POST".into(),
                variables: Default::default(),
            };
            let outcome = engine.run(&code, &webhook);
            let Ok(Outcome::Send { payload, .. }) = outcome else {
                panic!("{} on {}: {outcome:?}", format.id, et.name);
            };
            if let Err(issues) = validate(&schema, &payload, 10) {
                panic!("{} on {}: {issues:?}\n{payload:#}", format.id, et.name);
            }
            // The shapes tell the targets apart (a schema that took anything
            // would prove nothing).
            for other in formats::builtin().iter().filter(|o| o.id != format.id) {
                assert!(
                    validate(&shape(&other.id), &payload, 1).is_err(),
                    "{}'s body passes {}'s shape",
                    format.id,
                    other.id
                );
            }
            // The sentence is the catalog's, filled in: no placeholder left.
            let text = payload.to_string();
            assert!(
                !text.contains("{member."),
                "{} on {}: {text}",
                format.id,
                et.name
            );
        }
    }
}

#[test]
fn the_sentences_read_as_a_person_would_write_them() {
    let now = chrono::Utc::now();
    let event_types: Vec<_> = herald::catalog::builtin()
        .unwrap()
        .iter()
        .map(|e| e.to_event_type("org_herald", now))
        .collect();
    let code = formats::code(
        &formats::find("slack").unwrap(),
        &formats::summaries(&event_types),
    );
    let mut engine = Engine::new(Limits::default()).unwrap();
    let table = [
        ("member.created", "Claire Dubois joined Growth Makers Club"),
        ("live.updated", "Monthly Q&A with the founders is now Live"),
        (
            "forum.topic.created",
            "Mateo Rossi posted “How do I export my event attendees?” in Help & support",
        ),
        (
            "document.updated",
            "The Page “Getting started guide” in Member resources is now Published",
        ),
    ];
    for (name, want) in table {
        let et = event_types.iter().find(|et| et.name == name).unwrap();
        let webhook = Webhook {
            event_type: name.into(),
            payload: et.example(0).cloned().unwrap(),
            url: "https://hooks.example.com/in".into(),
            method: "POST".into(),
            variables: Default::default(),
        };
        let Ok(Outcome::Send { payload, .. }) = engine.run(&code, &webhook) else {
            panic!("{name}");
        };
        assert_eq!(payload["text"], want, "{name}");
    }
}
