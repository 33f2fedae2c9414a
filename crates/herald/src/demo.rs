//! `herald demo`: a newcomer's tour. Herald runs on a temporary SQLite database
//! with the Spot catalog, beside a local receiver that answers 200 and a
//! simulated Spot platform that fires realistic events through Herald's own
//! API every few seconds. Within a minute the portal shows a living delivery
//! log. Nothing is kept: the database goes away with the process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::{HeaderMap, StatusCode, Uri};
use clap::Parser;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::auth::{Keys, DEFAULT_ORG};
use crate::config::ServeArgs;

/// The demo application's uid and name.
pub const DEMO_APP_UID: &str = "demo-spot";
pub const DEMO_APP_NAME: &str = "Design Club";

/// How long the printed portal link can be opened: a working day of touring.
const PORTAL_LINK_TTL_SECONDS: &str = "43200";

/// Settings of `herald demo`.
#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {
    /// Address to serve Herald's API and portal on.
    #[arg(long, default_value = "127.0.0.1:8071")]
    pub listen: SocketAddr,

    /// Seconds between two simulated Spot events.
    #[arg(long, default_value_t = 3)]
    pub interval_seconds: u64,
}

/// Runs the demo until `shutdown` is cancelled (Ctrl-C or SIGTERM in `main`).
pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    if args.interval_seconds == 0 {
        bail!("--interval-seconds must be at least 1");
    }
    let dir = TempDir::create()?;
    let secret = random_hex(32);
    let config = serve_config(&dir.path, &secret)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{}", browsable(addr));

    let (ready, started) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(crate::app::serve_when_ready(
        config,
        listener,
        shutdown.clone(),
        move |herald| {
            // Tests and scripts read the first line to learn the address, as
            // with `serve`; printed once Herald takes connections.
            println!("Herald listening on http://{addr}");
            let _ = ready.send(herald.clone());
        },
    ));

    let outcome = match started.await {
        Ok(herald) => tour(&base, &herald, &secret, args.interval_seconds, &shutdown).await,
        // Herald stopped before it was ready: its error is `served`'s.
        Err(_) => Ok(()),
    };
    shutdown.cancel();
    let served = server.await.context("Herald panicked")?;
    outcome.and(served)
}

/// Everything after Herald is up: the demo Spot, the receiver, the platform.
async fn tour(
    base: &str,
    herald: &crate::service::Herald,
    secret: &str,
    interval_seconds: u64,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let keys = Keys::new(secret.as_bytes());
    let api = Api {
        http: reqwest::Client::new(),
        base: base.to_string(),
        token: keys.org_token(DEFAULT_ORG),
    };
    api.wait_healthy(shutdown).await?;

    let receiver = start_receiver(shutdown.clone()).await?;
    let app = api
        .post(
            "/api/v1/app",
            json!({"name": DEMO_APP_NAME, "uid": DEMO_APP_UID}),
        )
        .await?;
    let app_id = app["id"]
        .as_str()
        .context("the created application has no id")?
        .to_string();
    api.post(
        &format!("/api/v1/app/{app_id}/endpoint"),
        json!({
            "url": format!("http://{receiver}/webhooks/all"),
            "description": "Demo receiver: every event",
        }),
    )
    .await?;
    api.post(
        &format!("/api/v1/app/{app_id}/endpoint"),
        json!({
            "url": format!("http://{receiver}/webhooks/lives"),
            "description": "Demo receiver: lives, dates in ISO 8601",
            "filterTypes": ["live.updated", "live.participant.created", "live.participant.updated"],
            "dateFormat": "iso8601",
        }),
    )
    .await?;

    // The link the platform would hand its Spot admin (it opens the portal
    // once; `herald portal-link --app demo-spot` makes another).
    let access = api
        .post(
            &format!("/api/v1/auth/app-portal-access/{app_id}"),
            json!({}),
        )
        .await?;
    let portal_token = access["token"]
        .as_str()
        .context("the portal access answer has no token")?;
    println!("Portal: {}", crate::service::links::url(base, portal_token));
    // The operator view, as `herald portal-link` prints it: every application
    // of the organisation (here the one demo Spot), and any one's portal.
    let operator = crate::service::links::LinkRequest {
        org_id: DEFAULT_ORG.to_string(),
        app_id: None,
        read_only: false,
        session_id: None,
        link_ttl: herald.config.portal_token_ttl,
        expiry: None,
        theme: None,
        feature_flags: Vec::new(),
    };
    let operator_token =
        crate::service::links::issue(herald.store.as_ref(), &herald.keys, &operator)
            .await
            .context("cannot issue the operator link")?;
    println!(
        "Operator view: {}",
        crate::service::links::url(base, &operator_token)
    );
    println!("API token: {}", api.token);
    println!(
        "Demo Spot: {DEMO_APP_NAME} ({app_id}, uid {DEMO_APP_UID}); receiver on http://{receiver}"
    );
    println!("Spot events every {interval_seconds} s; Ctrl-C stops the demo and deletes its data.");

    let mut platform = Platform::new()?;
    let mut tick = tokio::time::interval(Duration::from_secs(interval_seconds));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let event = platform.next_event();
        let mut body = json!({"eventType": event.event_type, "payload": event.payload});
        if let Some(channel) = event.channel {
            body["channels"] = json!([channel]);
        }
        if let Err(e) = api.post(&format!("/api/v1/app/{app_id}/msg"), body).await {
            // Herald is shutting down, or refused the event: say so and go on.
            if shutdown.is_cancelled() {
                return Ok(());
            }
            eprintln!("platform: {} was not accepted: {e:#}", event.event_type);
        }
    }
}

/// `serve`'s settings for the demo, parsed like the command line so that every
/// default stays `serve`'s own.
fn serve_config(dir: &std::path::Path, secret: &str) -> anyhow::Result<crate::config::Config> {
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }
    let database_url = format!("sqlite://{}", dir.join("herald.db").display());
    let serve = Serve::try_parse_from([
        "herald-demo",
        "--role",
        "all",
        "--database-url",
        &database_url,
        "--secret",
        secret,
        // The demo receiver is on loopback, which deliveries otherwise refuse.
        "--allow-subnets",
        "127.0.0.1/32",
        "--seed-catalog",
        "--catalog-title",
        "Spot webhook event types",
        // Failed deliveries come back quickly in a demo.
        "--retry-schedule",
        "5,30,120",
        "--portal-token-ttl-seconds",
        PORTAL_LINK_TTL_SECONDS,
    ])
    .context("the demo's settings")?;
    serve.args.resolve()
}

/// A URL a browser can open for `addr` (an unspecified address means this host).
fn browsable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The temporary directory of the demo's database, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("herald-demo-{}", random_hex(8)));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Herald's API as the platform calls it.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn wait_healthy(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        for _ in 0..500 {
            if shutdown.is_cancelled() {
                bail!("stopped before Herald was up");
            }
            let r = self
                .http
                .get(format!("{}/api/v1/health", self.base))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("Herald did not become healthy within 10 s")
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Starts the receiver on a free loopback port: it answers 200 to everything and
/// prints one line per delivery.
async fn start_receiver(shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo receiver")?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().fallback(receive);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the demo receiver stopped");
        }
    });
    Ok(addr)
}

async fn receive(
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    let summary = serde_json::from_slice::<Value>(&body)
        .map(|v| describe(&v))
        .unwrap_or_else(|_| format!("{} bytes", body.len()));
    println!("receiver {:<16} {id}  {summary}", uri.path());
    (StatusCode::OK, "ok")
}

/// A few words on a Spot payload, for the receiver's line.
fn describe(p: &Value) -> String {
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).unwrap_or("?");
    let member = format!("{} {}", s("/member/firstname"), s("/member/lastname"));
    if p.get("form").is_some() {
        format!("{member} answered \"{}\"", s("/form/name"))
    } else if p.get("topic").is_some() {
        format!("{member} opened a topic: \"{}\"", s("/topic/title"))
    } else if p.get("step").is_some() {
        format!(
            "{member} completed \"{}\" in \"{}\"",
            s("/step/name"),
            s("/course/name")
        )
    } else if p.get("courseParticipant").is_some() {
        format!(
            "{member}: \"{}\" {}",
            s("/course/name"),
            s("/courseParticipant/status")
        )
    } else if p.get("liveParticipant").is_some() {
        format!(
            "{member}: \"{}\" {}",
            s("/live/name"),
            s("/liveParticipant/status")
        )
    } else if p.get("live").is_some() {
        format!("live \"{}\" is {}", s("/live/name"), s("/live/status"))
    } else if p.get("member").is_some() {
        format!("member {member} ({})", s("/member/status"))
    } else {
        "event".to_string()
    }
}

/// One event the simulated platform sends.
struct Event {
    event_type: &'static str,
    payload: Value,
    channel: Option<String>,
}

/// A Spot's life in a loop: people join and change, a live is planned, starts
/// and ends with participants, a course progresses, the forum and the
/// registration form get used. Payloads are the catalog's examples with fresh
/// ids, names and times.
struct Platform {
    examples: HashMap<String, Value>,
    spot: Value,
    members: Vec<Value>,
    step: usize,
    live: Value,
    course: Value,
}

const PEOPLE: [(&str, &str, &str); 10] = [
    ("Claire", "Dubois", "Product Designer"),
    ("Yuki", "Tanaka", "Illustrator"),
    ("Mateo", "Rossi", "Art Director"),
    ("Aisha", "Khan", "UX Researcher"),
    ("Lukas", "Becker", "Type Designer"),
    ("Nora", "Lindqvist", "Community Manager"),
    ("Samuel", "Adeyemi", "Motion Designer"),
    ("Elena", "Popescu", "Brand Strategist"),
    ("Tomás", "Herrera", "Photographer"),
    ("Hannah", "Okafor", "Design Engineer"),
];

const LIVES: [&str; 4] = [
    "Portfolio review night",
    "Figma tips with the founders",
    "Colour theory live critique",
    "Ask me anything: freelancing",
];

const COURSES: [&str; 3] = [
    "Design systems 101",
    "Accessible interfaces",
    "Typography essentials",
];

const TOPICS: [&str; 4] = [
    "Which tablet do you use for sketching?",
    "Feedback wanted on my landing page",
    "Best resources to learn motion design?",
    "How do you price a branding project?",
];

/// The order of one round of the simulation: three people join, one live
/// goes from planned to ended, one course is followed to the end.
const SCRIPT: [&str; 14] = [
    "member.created",
    "live.updated",
    "member.created",
    "live.participant.created",
    "member.updated",
    "course.participant.created",
    "live.updated",
    "course.step.completed",
    "member.created",
    "live.participant.updated",
    "forum.topic.created",
    "live.updated",
    "course.participant.status.updated",
    "registration_form.answered",
];

impl Platform {
    fn new() -> anyhow::Result<Platform> {
        let mut examples = HashMap::new();
        for entry in crate::catalog::builtin()? {
            if let Some(example) = entry
                .schemas
                .as_ref()
                .and_then(|s| s.pointer("/1/examples/0"))
            {
                examples.insert(entry.name.clone(), example.clone());
            }
        }
        for name in SCRIPT {
            if !examples.contains_key(name) {
                bail!("the built-in catalog has no example of {name}");
            }
        }
        Ok(Platform {
            examples,
            spot: json!({"id": uuid(), "name": DEMO_APP_NAME}),
            members: Vec::new(),
            step: 0,
            live: Value::Null,
            course: Value::Null,
        })
    }

    fn next_event(&mut self) -> Event {
        let event_type = SCRIPT[self.step % SCRIPT.len()];
        let round = self.step / SCRIPT.len();
        let lives_in_round = SCRIPT[..self.step % SCRIPT.len()]
            .iter()
            .filter(|t| **t == "live.updated")
            .count();
        self.step += 1;
        let now = chrono::Utc::now().timestamp();
        let mut p = self.examples[event_type].clone();
        p["spot"] = self.spot.clone();
        p["occurredAt"] = json!(now);
        p["test"] = json!(false);
        let mut channel = None;
        match event_type {
            "member.created" => {
                let member = self.new_member(round);
                p["member"]["id"] = member["id"].clone();
                for field in ["email", "firstname", "lastname", "title"] {
                    p["member"][field] = member[field].clone();
                }
                p["member"]["status"] = json!("Accepted");
                p["member"]["utm"]["campaign"] = json!("design-club-launch");
            }
            "member.updated" => {
                let member = self.some_member();
                p["member"] = member;
                p["member"]["title"] = json!(format!(
                    "Senior {}",
                    p["member"]["title"].as_str().unwrap_or("Designer")
                ));
                p["member"]["status"] = json!("Accepted");
                if let Some(m) = self
                    .members
                    .iter_mut()
                    .find(|m| m["id"] == p["member"]["id"])
                {
                    *m = p["member"].clone();
                }
            }
            "live.updated" => {
                // Planned, then Live, then Ended: one live per round.
                if lives_in_round == 0 {
                    self.live = json!({
                        "id": uuid(),
                        "name": LIVES[round % LIVES.len()],
                        "startsAt": now + 600,
                    });
                }
                let status = ["Planned", "Live", "Ended"][lives_in_round.min(2)];
                p["live"] = self.live.clone();
                p["live"]["status"] = json!(status);
            }
            "live.participant.created" | "live.participant.updated" => {
                p["live"] = self.live.clone();
                p["member"] = self.some_member();
                let status = if event_type.ends_with("created") {
                    "Accepted"
                } else {
                    *["Accepted", "Declined"]
                        .choose(&mut rand::thread_rng())
                        .unwrap()
                };
                p["liveParticipant"]["status"] = json!(status);
            }
            "course.participant.created" => {
                self.course = json!({"id": uuid(), "name": COURSES[round % COURSES.len()]});
                p["course"] = self.course.clone();
                p["member"] = self.some_member();
                p["courseParticipant"]["status"] = json!("Started");
            }
            "course.step.completed" => {
                p["course"] = self.course.clone();
                p["member"] = self.some_member();
                p["step"] = json!({"id": uuid(), "name": "Check your knowledge", "type": "Quiz"});
                p["quizScore"] = json!(rand::thread_rng().gen_range(55..=100));
            }
            "course.participant.status.updated" => {
                p["course"] = self.course.clone();
                p["member"] = self.some_member();
                p["courseParticipant"]["status"] = json!("Completed");
            }
            "forum.topic.created" => {
                p["forum"] = json!({"id": uuid(), "name": "Critique corner"});
                p["member"] = self.some_member();
                p["topic"]["id"] = json!(uuid());
                p["topic"]["title"] = json!(TOPICS[round % TOPICS.len()]);
                p["topic"]["createdAt"] = json!(now);
            }
            "registration_form.answered" => {
                let form_id = uuid();
                p["form"] = json!({"id": form_id, "name": "Welcome to Design Club"});
                p["member"] = self.some_member();
                p["member"]["status"] = json!("Pending");
                if let Some(answers) = p["answers"].as_array_mut() {
                    for a in answers {
                        a["question"]["id"] = json!(uuid());
                    }
                }
                channel = Some(format!("registration-form.{form_id}"));
            }
            _ => {}
        }
        Event {
            event_type,
            payload: p,
            channel,
        }
    }

    fn new_member(&mut self, round: usize) -> Value {
        let (first, last, title) = PEOPLE[(round + self.members.len()) % PEOPLE.len()];
        let member = json!({
            "id": uuid(),
            "email": format!(
                "{}.{}{}@example.com",
                ascii_lower(first),
                ascii_lower(last),
                if round > 0 { round.to_string() } else { String::new() }
            ),
            "firstname": first,
            "lastname": last,
            "status": "Accepted",
            "title": title,
        });
        self.members.push(member.clone());
        member
    }

    /// A member who already joined (the first event of a round makes one).
    fn some_member(&mut self) -> Value {
        if self.members.is_empty() {
            return self.new_member(0);
        }
        self.members
            .choose(&mut rand::thread_rng())
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' => 'a',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A random UUID v4 in its usual text form, as Spot's ids are.
fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_sends_every_scripted_event_with_a_fresh_payload() {
        let mut platform = Platform::new().unwrap();
        let events: Vec<Event> = (0..SCRIPT.len()).map(|_| platform.next_event()).collect();
        let statuses: Vec<&str> = events
            .iter()
            .filter(|e| e.event_type == "live.updated")
            .map(|e| e.payload["live"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["Planned", "Live", "Ended"]);
        for e in &events {
            assert_eq!(e.payload["test"], false, "{}", e.event_type);
            assert_eq!(e.payload["spot"]["name"], DEMO_APP_NAME);
            assert!(e.payload["occurredAt"].as_i64().unwrap() > 1_700_000_000);
        }
        let form = events.last().unwrap();
        let form_id = form.payload["form"]["id"].as_str().unwrap();
        assert_eq!(
            form.channel.as_deref(),
            Some(format!("registration-form.{form_id}").as_str())
        );
        // The payloads still match the catalog's schemas.
        let entries = crate::catalog::builtin().unwrap();
        for e in &events {
            let entry = entries.iter().find(|x| x.name == e.event_type).unwrap();
            let schema = entry.schemas.as_ref().unwrap().get("1").unwrap();
            herald_core::schema::validate(schema, &e.payload, 10)
                .unwrap_or_else(|err| panic!("{}: {err:?}\n{}", e.event_type, e.payload));
        }
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }
}
