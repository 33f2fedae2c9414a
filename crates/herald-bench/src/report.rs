//! Figures: what one measured phase gives, the table for people and the JSON
//! for machines.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::load::Sent;
use super::receiver::PhaseRecord;
use super::server::{ProcessRss, Rss};

/// Latency percentiles, in milliseconds (nearest rank).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(mut us: Vec<u64>) -> Option<Percentiles> {
        if us.is_empty() {
            return None;
        }
        us.sort_unstable();
        let n = us.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            us[rank - 1] as f64 / 1000.0
        };
        Some(Percentiles {
            count: n as u64,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: us[n - 1] as f64 / 1000.0,
        })
    }
}

/// One measured phase: messages sent, deliveries counted, rate and latency.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub label: String,
    pub messages_sent: u64,
    pub messages_accepted: u64,
    /// Sends the server refused or that failed (not losses; the smoke run fails on them).
    pub send_errors: u64,
    pub first_send_error: Option<String>,
    /// Deliveries expected on the counted endpoints: accepted messages x endpoints.
    pub deliveries_expected: u64,
    /// Distinct (endpoint, message) pairs that arrived.
    pub deliveries: u64,
    pub duplicates: u64,
    pub lost: u64,
    /// Arrivals of no message of this phase (leftovers of an earlier one).
    pub stray: u64,
    /// From the measurement's start (first send, or the receiver coming back)
    /// to the last arrival.
    pub seconds: f64,
    pub deliveries_per_second: f64,
    /// `deliveries_per_second` over the raw loopback POSTs/s of the same run.
    pub ratio_to_raw: f64,
    /// Accepted messages per second, first send to last 202.
    pub api_messages_per_second: f64,
    /// Send (API call) to arrival at the receiver.
    pub end_to_end: Option<Percentiles>,
    /// API call to its answer.
    pub api_call: Option<Percentiles>,
    /// The server's memory, summed over its processes.
    pub server_rss: Option<Rss>,
    /// Each server process's memory (`all`, or `api` and `worker k`).
    pub server_processes: Vec<ProcessRss>,
}

impl Outcome {
    /// Counts the deliveries of `sent` on the endpoints `counted`, timing from
    /// `from_us` to the last arrival.
    pub fn measure(
        label: &str,
        sent: &Sent,
        record: &PhaseRecord,
        counted: &[usize],
        from_us: u64,
        raw_per_second: f64,
    ) -> Outcome {
        let mut rejected = vec![false; record.counts.first().map_or(0, Vec::len)];
        for &seq in &sent.rejected {
            if let Some(r) = usize::try_from(seq).ok().and_then(|s| rejected.get_mut(s)) {
                *r = true;
            }
        }
        let (mut expected, mut deliveries, mut duplicates, mut lost) = (0, 0, 0, 0);
        let mut latencies = Vec::new();
        for &k in counted {
            let Some(counts) = record.counts.get(k) else {
                continue;
            };
            for (seq, &c) in counts.iter().enumerate().take(sent.attempted as usize) {
                if rejected[seq] {
                    continue;
                }
                expected += 1;
                match c {
                    0 => lost += 1,
                    c => {
                        deliveries += 1;
                        duplicates += u64::from(c - 1);
                    }
                }
            }
            latencies.extend_from_slice(&record.latencies_us[k]);
        }
        let seconds = record
            .last_arrival_us
            .map_or(0.0, |last| last.saturating_sub(from_us) as f64 / 1e6);
        let per_second = if seconds > 0.0 {
            deliveries as f64 / seconds
        } else {
            0.0
        };
        let api_seconds = sent.last_ack_us.saturating_sub(sent.first_send_us) as f64 / 1e6;
        Outcome {
            label: label.into(),
            messages_sent: sent.attempted,
            messages_accepted: sent.accepted(),
            send_errors: sent.rejected.len() as u64,
            first_send_error: sent.first_error.clone(),
            deliveries_expected: expected,
            deliveries,
            duplicates,
            lost,
            stray: record.stray,
            seconds,
            deliveries_per_second: per_second,
            ratio_to_raw: if raw_per_second > 0.0 {
                per_second / raw_per_second
            } else {
                0.0
            },
            api_messages_per_second: if api_seconds > 0.0 {
                sent.accepted() as f64 / api_seconds
            } else {
                0.0
            },
            end_to_end: Percentiles::of(latencies),
            api_call: Percentiles::of(sent.api_latencies_us.clone()),
            server_rss: None,
            server_processes: Vec::new(),
        }
    }

    /// Records the server processes' memory as last seen.
    pub fn set_processes(&mut self, processes: Vec<ProcessRss>) {
        self.server_rss = super::server::total(&processes);
        self.server_processes = processes;
    }

    /// Whether every accepted message arrived and the server accepted them all.
    pub fn complete(&self) -> bool {
        self.lost == 0 && self.send_errors == 0 && self.deliveries > 0
    }
}

/// A scenario's figures: its phases plus whatever else it measured.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub name: &'static str,
    pub params: Value,
    pub phases: Vec<Outcome>,
    /// Scenario-specific figures (backlog fill, isolation ratios).
    pub extra: Value,
    /// One line for the table's notes.
    #[serde(skip)]
    pub note: Option<String>,
}

/// The table for people.
pub fn table(header: &str, raw: &Value, scenarios: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let _ = writeln!(
        out,
        "raw loopback (no server): {:.0} POSTs/s  (concurrency {}, {:.1} s)\n",
        raw["posts_per_second"].as_f64().unwrap_or(0.0),
        raw["concurrency"],
        raw["seconds"].as_f64().unwrap_or(0.0),
    );
    let _ = writeln!(
        out,
        "{:<30} {:>8} {:>9} {:>5} {:>4} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "phase",
        "msgs",
        "delivered",
        "lost",
        "dup",
        "deliv/s",
        "vs raw",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "peak RSS"
    );
    for o in scenarios.iter().flat_map(|s| &s.phases) {
        let lat = |f: fn(&Percentiles) -> f64| {
            o.end_to_end
                .as_ref()
                .map_or("-".to_string(), |p| format!("{:.1}", f(p)))
        };
        let _ = writeln!(
            out,
            "{:<30} {:>8} {:>9} {:>5} {:>4} {:>9.0} {:>6.1}% {:>8} {:>8} {:>8} {:>8} {:>9}",
            o.label,
            o.messages_accepted,
            o.deliveries,
            o.lost,
            o.duplicates,
            o.deliveries_per_second,
            o.ratio_to_raw * 100.0,
            lat(|p| p.p50_ms),
            lat(|p| p.p90_ms),
            lat(|p| p.p99_ms),
            lat(|p| p.max_ms),
            o.server_rss
                .map_or("-".to_string(), |r| format!("{:.0} MB", mb(r.peak_kb))),
        );
    }
    let mut notes: Vec<String> = scenarios.iter().filter_map(|s| s.note.clone()).collect();
    for o in scenarios.iter().flat_map(|s| &s.phases) {
        if o.server_processes.len() > 1 {
            let each: Vec<String> = o
                .server_processes
                .iter()
                .map(|p| format!("{} {:.0} MB", p.role, mb(p.rss.peak_kb)))
                .collect();
            notes.push(format!(
                "{}: peak RSS (summed above) {}",
                o.label,
                each.join(", ")
            ));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
    }
    out
}

pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
