//! One QuickJS runtime and context, used by one thread for run after run.
//!
//! Each distinct transformation is compiled once per engine and kept (a small
//! cache keyed by its code); a run sets its deadline, calls the handler, and
//! reads the result back as JSON. After a run that timed out or ran out of
//! memory the engine is thrown away and the next run gets a fresh one: QuickJS
//! is left in a sound state by both, but a fresh heap is cheap (about a
//! millisecond) and certain.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use rquickjs::context::EvalOptions;
use rquickjs::{
    CatchResultExt, CaughtError, Context, Function, Object, Persistent, Runtime, Value,
};

use crate::{Failure, Limits, Outcome, Webhook};

/// Handlers kept compiled per engine; past it the cache starts over.
const COMPILED_KEPT: usize = 256;
/// The file name errors name (`transformation.js:3:14`).
const FILE: &str = "transformation.js";

/// Runs before any transformation: takes the clock away (a transformation's
/// result must not depend on when it runs), keeping dates built from values
/// (`new Date(ts).toISOString()`).
const PRELUDE: &str = r#"
(() => {
  const RealDate = Date;
  const noClock = () => { throw new TypeError("the clock is not available in transformations"); };
  function SandboxDate(...args) {
    if (!new.target || args.length === 0) noClock();
    return new RealDate(...args);
  }
  SandboxDate.prototype = RealDate.prototype;
  SandboxDate.UTC = RealDate.UTC;
  SandboxDate.parse = RealDate.parse;
  SandboxDate.now = noClock;
  Object.defineProperty(RealDate.prototype, "constructor", { value: SandboxDate });
  globalThis.Date = SandboxDate;
})();
"#;

/// Fields drop in order: the compiled handlers and the context must go
/// before the runtime that holds their objects.
pub struct Engine {
    compiled: HashMap<String, Persistent<Function<'static>>>,
    context: Context,
    /// Kept for as long as its context: the heap, limits and interrupt hook
    /// live here.
    _runtime: Runtime,
    limits: Limits,
    /// When the running handler must stop; read by QuickJS's interrupt hook.
    deadline: Rc<Cell<Option<Instant>>>,
}

impl Engine {
    pub fn new(limits: Limits) -> Result<Engine, Failure> {
        let runtime = Runtime::new().map_err(|e| Failure::Engine(e.to_string()))?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(256 * 1024);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::default();
        let hook = deadline.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            hook.get().is_some_and(|d| Instant::now() >= d)
        })));
        let context = Context::full(&runtime).map_err(|e| Failure::Engine(e.to_string()))?;
        context
            .with(|ctx| ctx.eval::<(), _>(PRELUDE))
            .map_err(|e| Failure::Engine(format!("the sandbox prelude failed: {e}")))?;
        Ok(Engine {
            limits,
            _runtime: runtime,
            context,
            deadline,
            compiled: HashMap::new(),
        })
    }

    /// Whether `code` compiles and defines `handler`.
    pub fn check(&mut self, code: &str) -> Result<(), Failure> {
        self.handler(code).map(|_| ())
    }

    /// Runs the transformation `code` on `webhook`.
    pub fn run(&mut self, code: &str, webhook: &Webhook) -> Result<Outcome, Failure> {
        let handler = self.handler(code)?;
        let input = serde_json::json!({
            "eventType": webhook.event_type,
            "payload": webhook.payload,
            "url": webhook.url,
            "method": webhook.method,
            "variables": webhook.variables,
        })
        .to_string();
        self.deadline.set(Some(Instant::now() + self.limits.time));
        let result = self.context.with(|ctx| {
            let handler = handler
                .restore(&ctx)
                .map_err(|e| Failure::Engine(e.to_string()))?;
            let arg: Value = ctx
                .json_parse(input)
                .map_err(|e| Failure::Engine(e.to_string()))?;
            let out: Value = handler
                .call((arg,))
                .catch(&ctx)
                .map_err(|e| self.failure(e))?;
            if out.is_undefined() {
                return Err(Failure::BadResult(
                    "handler returned nothing; it must return the webhook object".into(),
                ));
            }
            let json = ctx
                .json_stringify(out)
                .catch(&ctx)
                .map_err(|e| self.failure(e))?
                .ok_or_else(|| {
                    Failure::BadResult("handler returned something that is not JSON".into())
                })?
                .to_string()
                .map_err(|e| Failure::Engine(e.to_string()))?;
            Ok(json)
        });
        self.deadline.set(None);
        let json = result.map_err(|f| self.settle(f))?;
        Outcome::from_json(&json, webhook)
    }

    /// The compiled handler of `code`, compiling it the first time.
    fn handler(&mut self, code: &str) -> Result<Persistent<Function<'static>>, Failure> {
        if let Some(h) = self.compiled.get(code) {
            return Ok(h.clone());
        }
        if self.compiled.len() >= COMPILED_KEPT {
            self.compiled.clear();
        }
        // Compiling runs top-level code too: it gets the same deadline.
        self.deadline.set(Some(Instant::now() + self.limits.time));
        let compiled = self.context.with(|ctx| {
            // The code is wrapped so that its lines keep their numbers and its
            // top-level names stay its own.
            let wrapped = format!(
                "(function () {{ {code}\n;return typeof handler === 'function' ? handler : undefined; }})()"
            );
            let mut options = EvalOptions::default();
            options.global = true;
            options.strict = false;
            options.filename = Some(FILE.into());
            let value: Value = ctx
                .eval_with_options(wrapped, options)
                .catch(&ctx)
                .map_err(|e| match self.failure(e) {
                    Failure::Threw(message) => Failure::Compile(message),
                    other => other,
                })?;
            let function = value.into_function().ok_or_else(|| {
                Failure::Compile("the code must define `function handler(webhook) { ... }`".into())
            })?;
            Ok(Persistent::save(&ctx, function))
        });
        self.deadline.set(None);
        let compiled = compiled.map_err(|f| self.settle(f))?;
        self.compiled.insert(code.to_string(), compiled.clone());
        Ok(compiled)
    }

    /// What a caught JavaScript error means for the caller.
    fn failure(&self, e: CaughtError<'_>) -> Failure {
        if self.deadline.get().is_some_and(|d| Instant::now() >= d) {
            return Failure::TimedOut(self.limits.time);
        }
        match e {
            CaughtError::Exception(ex) => {
                let message = ex.message().unwrap_or_default();
                let at = ex
                    .stack()
                    .and_then(|s| s.lines().find_map(location))
                    .unwrap_or_default();
                let kind = ex
                    .get::<_, Object>("constructor")
                    .and_then(|c| c.get::<_, String>("name"))
                    .unwrap_or_else(|_| "Error".into());
                // Past the heap limit QuickJS throws either `null` (below) or,
                // when it can still allocate one, this error.
                if kind == "InternalError" && message == "out of memory" {
                    return Failure::OutOfMemory(0);
                }
                Failure::Threw(format!("{kind}: {message}{at}").trim().to_string())
            }
            // QuickJS throws `null` when an allocation fails; whether that was
            // the heap limit is read once the runtime is free again
            // ([`Engine::settle`]).
            CaughtError::Value(v) if v.is_null() => Failure::OutOfMemory(0),
            CaughtError::Value(v) => Failure::Threw(format!(
                "threw a value that is not an Error: {}",
                v.as_string()
                    .and_then(|s| s.to_string().ok())
                    .unwrap_or_else(|| format!("{:?}", v.type_of()))
            )),
            CaughtError::Error(e) => Failure::Engine(e.to_string()),
        }
    }

    /// A failure as the caller sees it. QuickJS throws `null` when an
    /// allocation fails (it cannot allocate the error either); by the time the
    /// runtime can be asked, reference counting has already freed what the
    /// run held, so a thrown `null` is taken as the heap limit. (A script that
    /// throws `null` itself is told the same; it gets no further anyway.)
    fn settle(&self, failure: Failure) -> Failure {
        match failure {
            Failure::OutOfMemory(0) => Failure::OutOfMemory(self.limits.memory_bytes),
            other => other,
        }
    }
}

/// ` (line 3, column 14)` from a stack line that names the transformation.
fn location(stack_line: &str) -> Option<String> {
    let at = stack_line.find(FILE)? + FILE.len();
    let mut parts = stack_line[at..]
        .trim_start_matches(':')
        .split(|c: char| !c.is_ascii_digit());
    let line = parts.next().filter(|s| !s.is_empty())?;
    let column = parts.next().filter(|s| !s.is_empty());
    Some(match column {
        Some(col) => format!(" (line {line}, column {col})"),
        None => format!(" (line {line})"),
    })
}
