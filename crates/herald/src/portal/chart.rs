//! The endpoint page's chart: successes and failures per hour over the last
//! 24 hours, as an inline SVG (no script, no library), computed from attempts.

use chrono::{DateTime, Duration, DurationRound, Utc};
use herald_store::{Attempt, MessageStatus};

pub struct Chart {
    /// The `<svg id="delivery-chart">` element; numbers only, nothing from users.
    pub svg: String,
    pub successes: usize,
    pub failures: usize,
}

const HOURS: usize = 24;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 140.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

pub fn hourly(attempts: &[Attempt], now: DateTime<Utc>) -> Chart {
    // Bucket 23 is the current hour; bucket 0 began 23 hours before it.
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = this_hour - Duration::hours(HOURS as i64 - 1);
    let mut ok = [0usize; HOURS];
    let mut bad = [0usize; HOURS];
    for a in attempts {
        if a.created_at < first {
            continue;
        }
        let i = ((a.created_at - first).num_hours() as usize).min(HOURS - 1);
        if a.status == MessageStatus::Success {
            ok[i] += 1;
        } else {
            bad[i] += 1;
        }
    }
    let successes: usize = ok.iter().sum();
    let failures: usize = bad.iter().sum();
    let max = (0..HOURS).map(|i| ok[i] + bad[i]).max().unwrap_or(0).max(1);
    let plot = HEIGHT - TOP - BOTTOM;
    let slot = WIDTH / HOURS as f64;
    let bar = slot * 0.7;
    let mut svg = format!(
        "<svg id=\"delivery-chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         aria-label=\"Deliveries in the last 24 hours: {successes} succeeded, {failures} failed\">\
         <title>Deliveries per hour, last 24 hours: {successes} succeeded, {failures} failed</title>\
         <line class=\"axis\" x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>",
        base = HEIGHT - BOTTOM
    );
    for i in 0..HOURS {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let h_ok = plot * ok[i] as f64 / max as f64;
        let h_bad = plot * bad[i] as f64 / max as f64;
        let hour = (first + Duration::hours(i as i64)).format("%H:00");
        if ok[i] > 0 {
            svg.push_str(&format!(
                "<rect class=\"ok\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h_ok:.1}\"><title>{hour} UTC: {} succeeded</title></rect>",
                HEIGHT - BOTTOM - h_ok,
                ok[i]
            ));
        }
        if bad[i] > 0 {
            svg.push_str(&format!(
                "<rect class=\"fail\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h_bad:.1}\"><title>{hour} UTC: {} failed</title></rect>",
                HEIGHT - BOTTOM - h_ok - h_bad,
                bad[i]
            ));
        }
        if i % 6 == 0 || i == HOURS - 1 {
            // The first and last labels align with the chart's edges, so
            // neither is cut off by the viewBox; the others centre on their bar.
            let (anchor, at) = match i {
                0 => ("start", x),
                i if i == HOURS - 1 => ("end", x + bar),
                _ => ("middle", x + bar / 2.0),
            };
            svg.push_str(&format!(
                "<text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{hour}</text>",
                HEIGHT - 6.0
            ));
        }
    }
    svg.push_str("</svg>");
    Chart {
        svg,
        successes,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::TriggerType;

    fn attempt(at: DateTime<Utc>, status: MessageStatus) -> Attempt {
        Attempt {
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            id: "atmpt_1".into(),
            msg_id: "msg_1".into(),
            endpoint_id: "ep_1".into(),
            app_id: "app_1".into(),
            url: "https://example.com".into(),
            status,
            response_status_code: 200,
            response: String::new(),
            response_duration_ms: 1,
            trigger_type: TriggerType::Scheduled,
            skipped: None,
            created_at: at,
        }
    }

    #[test]
    fn counts_the_last_24_hours_only() {
        let now = Utc::now();
        let attempts = [
            attempt(now, MessageStatus::Success),
            attempt(now - Duration::hours(2), MessageStatus::Fail),
            attempt(now - Duration::hours(30), MessageStatus::Success),
        ];
        let chart = hourly(&attempts, now);
        assert_eq!((chart.successes, chart.failures), (1, 1));
        assert!(chart.svg.contains("1 succeeded, 1 failed"));
        assert_eq!(chart.svg.matches("<rect").count(), 2);
    }

    #[test]
    fn the_end_labels_stay_inside_the_chart() {
        let chart = hourly(&[], Utc::now());
        let labels: Vec<&str> = chart.svg.split("<text ").skip(1).collect();
        assert_eq!(labels.len(), 5, "{}", chart.svg);
        assert!(labels[0].contains("text-anchor=\"start\""), "{}", labels[0]);
        assert!(labels[4].contains("text-anchor=\"end\""), "{}", labels[4]);
        for label in &labels[1..4] {
            assert!(label.contains("text-anchor=\"middle\""), "{label}");
        }
        let x = |label: &str| -> f64 {
            label
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        // A label of five characters at 14 px is about 40 px wide.
        assert!(x(labels[0]) >= 0.0 && x(labels[0]) + 40.0 <= WIDTH);
        assert!(x(labels[4]) <= WIDTH && x(labels[4]) - 40.0 >= 0.0);
    }
}
