//! Transformations: the JavaScript Svix runs on a webhook before it is sent,
//! run here in an embedded QuickJS engine (`rquickjs`).
//!
//! A transformation is `function handler(webhook) { ...; return webhook; }`.
//! It gets `webhook.eventType`, `webhook.payload` (the JSON, dates already
//! converted), `webhook.url`, `webhook.method` and `webhook.variables` (the
//! endpoint's own values, such as an API key for the target); it may change the payload
//! (to any JSON value), the URL and the method (`POST`, `PUT` or `PATCH`), or
//! set `webhook.cancel = true` to send nothing. The caller signs and sends
//! what it returns, so the signature covers the bytes sent; the URL it
//! returns is still checked by the delivery's address rule.
//!
//! The sandbox: QuickJS without its standard library has no files, network
//! or processes; the prelude takes the clock away too (`Date.now()` and
//! `new Date()` throw; dates from values still work). Each run has a time
//! limit (QuickJS's interrupt hook) and each engine a memory limit. Engines
//! live on threads of their own ([`Transformer`]), one per thread, and are
//! reused run after run, each transformation compiled once per engine.
//!
//! Why QuickJS and not Boa (`boa_engine`): QuickJS enforces a heap limit and
//! lets the host interrupt a running script at any point, which is how an
//! endless loop and a memory hog are stopped; Boa (as of 0.20) has neither a
//! heap limit nor a wall-clock interrupt, only loop and recursion counters. A
//! QuickJS engine also starts in about a millisecond and runs a small handler
//! in microseconds.

mod engine;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use engine::Engine;

/// What one run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time of one run (compiling included).
    pub time: Duration,
    /// The engine's heap.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            time: Duration::from_millis(100),
            memory_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a transformation gets, and may change.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub event_type: String,
    pub payload: Value,
    pub url: String,
    pub method: String,
    /// The endpoint's transformation variables (`webhook.variables`), read
    /// only: what the handler does to them is not kept.
    pub variables: BTreeMap<String, String>,
}

/// What a transformation decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Send this instead.
    Send {
        payload: Value,
        url: String,
        method: String,
    },
    /// `webhook.cancel = true`: send nothing.
    Cancel,
}

/// Why a transformation gave no outcome. The text is what the attempt log
/// shows the endpoint's owner.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("transformation does not compile: {0}")]
    Compile(String),
    #[error("transformation threw {0}")]
    Threw(String),
    #[error("transformation ran longer than {} ms and was stopped", .0.as_millis())]
    TimedOut(Duration),
    #[error("transformation used more than {} MiB of memory and was stopped", .0 / (1024 * 1024))]
    OutOfMemory(usize),
    #[error("transformation returned an unusable result: {0}")]
    BadResult(String),
    #[error("the transformation engine failed: {0}")]
    Engine(String),
}

impl Failure {
    /// Whether the engine that hit this should be replaced before its next run.
    fn spoils_engine(&self) -> bool {
        matches!(
            self,
            Failure::TimedOut(_) | Failure::OutOfMemory(_) | Failure::Engine(_)
        )
    }
}

const METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];

impl Outcome {
    /// Reads the handler's result (as JSON text) against what it was given.
    fn from_json(json: &str, given: &Webhook) -> Result<Outcome, Failure> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| Failure::BadResult(format!("not JSON: {e}")))?;
        let Value::Object(mut fields) = value else {
            return Err(Failure::BadResult(
                "handler must return the webhook object".into(),
            ));
        };
        if fields
            .get("cancel")
            .is_some_and(|c| c == &Value::Bool(true))
        {
            return Ok(Outcome::Cancel);
        }
        let payload = fields
            .remove("payload")
            .ok_or_else(|| Failure::BadResult("the returned webhook has no payload".into()))?;
        let text = |name: &str, fallback: &str| -> Result<String, Failure> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(fallback.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(Failure::BadResult(format!(
                    "webhook.{name} must be a string, not {other}"
                ))),
            }
        };
        let url = text("url", &given.url)?;
        let method = text("method", &given.method)?.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(Failure::BadResult(format!(
                "webhook.method must be one of {}, not {method:?}",
                METHODS.join(", ")
            )));
        }
        Ok(Outcome::Send {
            payload,
            url,
            method,
        })
    }
}

/// Threads that each keep an [`Engine`], and run transformations for async
/// callers: a run never blocks the caller's runtime, and a slow one takes one
/// thread for at most its time limit.
#[derive(Clone)]
pub struct Transformer {
    jobs: mpsc::Sender<Job>,
}

enum Job {
    Check {
        code: Arc<str>,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    Run {
        code: Arc<str>,
        webhook: Webhook,
        reply: oneshot::Sender<Result<Outcome, Failure>>,
    },
}

impl Transformer {
    /// Starts `threads` engine threads (at least one). They end when the last
    /// clone of the `Transformer` is dropped.
    pub fn start(threads: usize, limits: Limits) -> Transformer {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("herald-transform-{n}"))
                .spawn(move || serve(&queue, limits))
                .expect("an engine thread starts");
        }
        Transformer { jobs }
    }

    /// Whether `code` compiles and defines `handler` (to refuse it when
    /// saved, with the compiler's message).
    pub async fn check(&self, code: &str) -> Result<(), Failure> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Check {
            code: code.into(),
            reply,
        })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs the transformation `code` on `webhook`.
    pub async fn run(&self, code: Arc<str>, webhook: Webhook) -> Result<Outcome, Failure> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Run {
            code,
            webhook,
            reply,
        })?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> Result<(), Failure> {
        self.jobs.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> Failure {
    Failure::Engine("the transformation threads have stopped".into())
}

/// One engine thread: takes jobs until the queue closes.
fn serve(queue: &Mutex<mpsc::Receiver<Job>>, limits: Limits) {
    let mut engine: Option<Engine> = None;
    loop {
        let job = match queue.lock().expect("transform queue lock").recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let engine_now = match engine.take() {
            Some(e) => Ok(e),
            None => Engine::new(limits),
        };
        let mut current = match engine_now {
            Ok(e) => e,
            Err(failure) => {
                match job {
                    Job::Check { reply, .. } => drop(reply.send(Err(failure))),
                    Job::Run { reply, .. } => drop(reply.send(Err(failure))),
                }
                continue;
            }
        };
        let spoiled = match job {
            Job::Check { code, reply } => {
                let result = current.check(&code);
                let spoiled = result.as_ref().err().is_some_and(Failure::spoils_engine);
                let _ = reply.send(result);
                spoiled
            }
            Job::Run {
                code,
                webhook,
                reply,
            } => {
                let result = current.run(&code, &webhook);
                let spoiled = result.as_ref().err().is_some_and(Failure::spoils_engine);
                let _ = reply.send(result);
                spoiled
            }
        };
        if !spoiled {
            engine = Some(current);
        }
    }
}

#[cfg(test)]
mod tests;
