use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn webhook() -> Webhook {
    Webhook {
        event_type: "member.created".into(),
        payload: json!({"member": {"firstName": "Ada", "joinedAt": 1715095714}}),
        url: "https://hooks.example.com/in".into(),
        method: "POST".into(),
        variables: Default::default(),
    }
}

fn limits() -> Limits {
    Limits {
        time: Duration::from_millis(200),
        memory_bytes: 8 * 1024 * 1024,
    }
}

fn run(code: &str) -> Result<Outcome, Failure> {
    Engine::new(limits()).unwrap().run(code, &webhook())
}

#[test]
fn a_handler_reshapes_the_payload_and_may_change_url_and_method() {
    let table: [(&str, Outcome); 4] = [
        (
            "function handler(webhook) {
               webhook.payload = { text: `${webhook.payload.member.firstName} joined` };
               return webhook;
             }",
            Outcome::Send {
                payload: json!({"text": "Ada joined"}),
                url: "https://hooks.example.com/in".into(),
                method: "POST".into(),
            },
        ),
        (
            "function handler(w) { w.url = w.url + '?type=' + w.eventType; w.method = 'put'; return w; }",
            Outcome::Send {
                payload: webhook().payload,
                url: "https://hooks.example.com/in?type=member.created".into(),
                method: "PUT".into(),
            },
        ),
        (
            "function handler(w) { w.payload = [1, 'two']; return w; }",
            Outcome::Send {
                payload: json!([1, "two"]),
                url: "https://hooks.example.com/in".into(),
                method: "POST".into(),
            },
        ),
        (
            "function handler(w) { w.cancel = true; return w; }",
            Outcome::Cancel,
        ),
    ];
    for (code, want) in table {
        assert_eq!(run(code), Ok(want), "{code}");
    }
}

#[test]
fn failures_say_what_went_wrong_and_where() {
    let table: [(&str, &str); 8] = [
        (
            "function handler(w) {\n  let x = ;\n}",
            "transformation does not compile: SyntaxError: unexpected token in expression: ';' (line 2",
        ),
        ("let handler = 3;", "transformation does not compile: the code must define"),
        (
            "function handler(w) {\n  throw new TypeError('no member');\n}",
            "transformation threw TypeError: no member (line 2",
        ),
        (
            "function handler(w) { return w.payload.nothing.deeper; }",
            "transformation threw TypeError: cannot read property 'deeper' of undefined (line 1",
        ),
        ("function handler(w) { }", "handler returned nothing"),
        ("function handler(w) { return 42; }", "handler must return the webhook object"),
        ("function handler(w) { w.method = 'GET'; return w; }", "must be one of POST, PUT, PATCH"),
        ("function handler(w) { delete w.payload; return w; }", "the returned webhook has no payload"),
    ];
    for (code, want) in table {
        let got = run(code).unwrap_err().to_string();
        assert!(got.contains(want), "{code}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn endless_loops_and_memory_hogs_are_stopped_within_their_limits() {
    let mut engine = Engine::new(limits()).unwrap();
    let start = Instant::now();
    let endless = engine.run("function handler(w) { while (true) {} }", &webhook());
    let took = start.elapsed();
    assert_eq!(endless, Err(Failure::TimedOut(limits().time)));
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");

    let mut engine = Engine::new(limits()).unwrap();
    let hog = engine.run(
        "function handler(w) { const a = []; while (true) { a.push('x'.repeat(1000) + a.length); } }",
        &webhook(),
    );
    assert_eq!(hog, Err(Failure::OutOfMemory(limits().memory_bytes)));
    // Large allocations: QuickJS throws an InternalError instead of null.
    let mut engine = Engine::new(limits()).unwrap();
    let big = engine.run(
        "function handler(w) { const a = []; while (true) { a.push('x'.repeat(1 << 16)); } }",
        &webhook(),
    );
    assert_eq!(big, Err(Failure::OutOfMemory(limits().memory_bytes)));

    // Top-level code runs when compiling: it has the same limit.
    let mut engine = Engine::new(limits()).unwrap();
    let top = engine.check("while (true) {} function handler(w) { return w; }");
    assert_eq!(top, Err(Failure::TimedOut(limits().time)));
}

#[test]
fn the_sandbox_has_no_clock_files_network_or_processes() {
    for code in [
        "function handler(w) { w.payload = Date.now(); return w; }",
        "function handler(w) { w.payload = new Date().toISOString(); return w; }",
        "function handler(w) { w.payload = Date(); return w; }",
    ] {
        let got = run(code).unwrap_err().to_string();
        assert!(got.contains("the clock is not available"), "{code}: {got}");
    }
    // Dates from values still work.
    let from_value = run(
        "function handler(w) { w.payload = new Date(w.payload.member.joinedAt * 1000).toISOString(); return w; }",
    );
    assert!(
        matches!(&from_value, Ok(Outcome::Send { payload, .. }) if payload == &json!("2024-05-07T15:28:34.000Z")),
        "{from_value:?}"
    );
    for global in [
        "require",
        "process",
        "fetch",
        "XMLHttpRequest",
        "std",
        "os",
        "setTimeout",
    ] {
        let code = format!("function handler(w) {{ w.payload = typeof {global}; return w; }}");
        assert!(
            matches!(run(&code), Ok(Outcome::Send { payload, .. }) if payload == json!("undefined")),
            "{global} is defined"
        );
    }
}

#[test]
fn an_engine_is_reused_and_compiles_each_transformation_once() {
    let mut engine = Engine::new(limits()).unwrap();
    let code = "let runs = 0; function handler(w) { runs += 1; w.payload = runs; return w; }";
    for n in 1..=3 {
        let got = engine.run(code, &webhook());
        assert!(
            matches!(&got, Ok(Outcome::Send { payload, .. }) if payload == &json!(n)),
            "run {n}: {got:?}"
        );
    }
    // A run that fails leaves the engine usable for the next one.
    assert!(engine
        .run("function handler(w) { throw 1; }", &webhook())
        .is_err());
    assert!(engine.run(code, &webhook()).is_ok());
}

#[tokio::test]
async fn the_transformer_runs_on_its_threads_and_survives_bad_runs() {
    let transformer = Transformer::start(2, limits());
    let good: Arc<str> = "function handler(w) { w.payload = {ok: true}; return w; }".into();
    let endless: Arc<str> = "function handler(w) { for (;;) {} }".into();
    let (a, b, c) = tokio::join!(
        transformer.run(endless.clone(), webhook()),
        transformer.run(good.clone(), webhook()),
        transformer.run(endless, webhook()),
    );
    assert_eq!(a, Err(Failure::TimedOut(limits().time)));
    assert!(matches!(b, Ok(Outcome::Send { .. })), "{b:?}");
    assert_eq!(c, Err(Failure::TimedOut(limits().time)));
    // The engines that were stopped were replaced.
    for _ in 0..4 {
        assert!(transformer.run(good.clone(), webhook()).await.is_ok());
    }
    assert!(transformer
        .check("function handler(w) { return w; }")
        .await
        .is_ok());
    let refused = transformer
        .check("function handler(w) {")
        .await
        .unwrap_err();
    assert!(matches!(refused, Failure::Compile(_)), "{refused}");
}

#[test]
fn the_handler_reads_the_endpoints_variables() {
    let mut engine = Engine::new(limits()).unwrap();
    let given = Webhook {
        variables: [("channel".to_string(), "#general".to_string())].into(),
        ..webhook()
    };
    let got = engine.run(
        "function handler(w) { w.payload = { channel: w.variables.channel }; return w; }",
        &given,
    );
    assert_eq!(
        got,
        Ok(Outcome::Send {
            payload: json!({"channel": "#general"}),
            url: given.url.clone(),
            method: "POST".into(),
        })
    );
}
