//! Logs and traces: the `tracing` subscriber every command installs, and,
//! for `herald serve` with `HERALD_OTLP_ENDPOINT` set, an OpenTelemetry layer
//! that exports spans over OTLP (HTTP/protobuf) to a collector.
//!
//! The exported spans are few and named here: [`MESSAGE_ACCEPTED`] (the API
//! took a message) and [`DELIVERY_ATTEMPT`] (one attempt of one delivery).
//! They are declared with target [`TARGET`], which only the OpenTelemetry
//! layer enables: the log lines never show them, and with no exporter no
//! layer wants them, so each costs one check of a cached interest.
//!
//! What a span carries is ids, the event type, outcomes and durations; never
//! a payload, a secret, a header value, a token or an endpoint's URL.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{filter_fn, FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans exported over OTLP, and only of those.
pub const TARGET: &str = "herald::otlp";
/// The span of `POST /api/v1/app/{app_id}/msg`, from the request to the
/// message on disk.
pub const MESSAGE_ACCEPTED: &str = "message.accepted";
/// The span of one delivery attempt: shaping, signing and sending.
pub const DELIVERY_ATTEMPT: &str = "delivery.attempt";

/// Where spans go (`herald serve` only; other commands export nothing).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OtlpArgs {
    /// Export traces over OTLP (HTTP/protobuf) to this collector, e.g.
    /// `http://127.0.0.1:4318`; spans are POSTed to `{endpoint}/v1/traces`.
    /// Unset: nothing is exported.
    #[arg(long, env = "HERALD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The `service.name` the exported spans carry.
    #[arg(long, env = "HERALD_OTLP_SERVICE_NAME", default_value = "herald")]
    pub otlp_service_name: String,
}

/// Kept by `main` while the process runs; [`Telemetry::shutdown`] sends the
/// spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter (a no-op without one). Blocks up to the
    /// exporter's timeout, so it runs off the async threads.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not flush the last spans over OTLP"),
            Err(e) => tracing::warn!(error = %e, "the OTLP exporter's shutdown panicked"),
        }
    }
}

/// `{endpoint}/v1/traces`, for an `http` or `https` URL.
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(endpoint.trim())
        .context("HERALD_OTLP_ENDPOINT is not a URL (e.g. http://127.0.0.1:4318)")?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "HERALD_OTLP_ENDPOINT must be an http:// or https:// URL"
    );
    Ok(format!("{}/v1/traces", url.as_str().trim_end_matches('/')))
}

/// Installs the global subscriber: log lines to stderr filtered by `RUST_LOG`
/// (default `info,tower_http=warn,sqlx=warn`), and with `otlp` an exporter
/// of the [`TARGET`] spans.
pub fn init(otlp: Option<&OtlpArgs>) -> anyhow::Result<Telemetry> {
    let env = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into());
    let not_exported = filter_fn(|meta| meta.target() != TARGET);
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(env.and(not_exported));
    let endpoint = otlp.and_then(|o| o.otlp_endpoint.as_deref().map(|e| (o, e)));
    let Some((otlp, endpoint)) = endpoint.filter(|(_, e)| !e.trim().is_empty()) else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint)?)
        .with_timeout(std::time::Duration::from_secs(10))
        .build()
        .context("cannot set up the OTLP exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(otlp.otlp_service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("herald"))
        .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO));
    tracing_subscriber::registry().with(logs).with(spans).init();
    // The URL may carry credentials: only its host is logged.
    let host = url::Url::parse(endpoint.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    tracing::info!(%host, service = %otlp.otlp_service_name, "exporting traces over OTLP");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_appended_once() {
        for (given, want) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            (
                "https://otel.example/base/",
                "https://otel.example/base/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(given).unwrap(), want, "{given}");
        }
        assert!(traces_url("127.0.0.1:4318").is_err());
        assert!(traces_url("ftp://otel.example").is_err());
    }
}
