//! What sends or counts an endpoint's messages: stats, send-example,
//! recover, replay-missing and bulk-replay (the last three background tasks).

use super::*;

#[utoipa::path(
    get, operation_id = "v1.endpoint.stats",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
    tag = "Endpoint",
    summary = "An endpoint's delivery counts",
    params(crate::api::doc::EndpointPath, ("since" = Option<chrono::DateTime<chrono::Utc>>, Query), ("until" = Option<chrono::DateTime<chrono::Utc>>, Query)),
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn stats(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<Value>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let s = state
        .store
        .endpoint_stats(&ep.id, params.datetime("since")?, params.datetime("until")?)
        .await?;
    Ok(Json(json!({
        "success": s.success,
        "pending": s.pending,
        "sending": s.sending,
        "fail": s.fail,
        "canceled": 0,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    event_type: String,
    #[serde(default)]
    example_index: Option<usize>,
    #[serde(default)]
    payload: Option<Value>,
}

/// The Test button's answer: the message, as Svix answers, plus the outcome of
/// the one attempt Herald made right away.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExampleOut {
    #[serde(flatten)]
    message: MessageOut,
    /// Status code, response body prefix (or why nothing was sent) and duration.
    attempt: Option<MessageAttemptOut>,
}

/// The Test button: sends the event type's example (marked `"test": true`) to
/// this endpoint only, whatever its filters, right away and once, and answers
/// with the outcome. The attempt is in the log like any other.
#[utoipa::path(
    post, operation_id = "v1.endpoint.send-example",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    tag = "Endpoint",
    summary = "Send an example event",
    params(crate::api::doc::EndpointPath),
    request_body = EventExampleIn,
    responses((status = 200, description = "OK", body = ExampleOut))
)]
pub async fn send_example(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<EventExampleIn>,
) -> Result<(StatusCode, Json<ExampleOut>)> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let (msg, attempt) = endpoints::send_test(
        &state,
        &app,
        &ep,
        input.event_type,
        input.example_index,
        input.payload,
    )
    .await?;
    // 200, as Svix's spec answers it (the example was sent, not queued).
    Ok((
        StatusCode::OK,
        Json(ExampleOut {
            message: MessageOut::new(msg, true),
            attempt: attempt.map(MessageAttemptOut::from),
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecoverIn {
    since: chrono::DateTime<Utc>,
    #[serde(default)]
    until: Option<chrono::DateTime<Utc>>,
}

/// Queues every failed delivery to this endpoint since a time again, as
/// Svix does: a background task answered `running` at once, finished (with
/// how many it queued) or failed behind, and readable at
/// `/api/v1/background-task/{id}`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.recover",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    tag = "Endpoint",
    summary = "Resend the failed messages since a time",
    params(crate::api::doc::EndpointPath),
    request_body = RecoverIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn recover(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<RecoverIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    // Nothing older than the attempts Herald keeps can be recovered (Svix:
    // 14 days).
    let reach = Some(state.config.attempt_retention);
    let ep = (app_id, endpoint_id);
    window_task(
        state,
        who,
        ep,
        (input, reach),
        "endpoint.recover",
        "recovered",
        |h, ep, since, until| async move { endpoints::recover(&h, &ep, since, until).await },
    )
    .await
}

/// Queues to this endpoint every message of the window it never got (Svix's
/// `replay-missing`): a background task, as `recover`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.replay-missing",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
    tag = "Endpoint",
    summary = "Send the messages an endpoint never got",
    params(crate::api::doc::EndpointPath),
    request_body = RecoverIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn replay_missing(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<RecoverIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    let ep = (app_id, endpoint_id);
    window_task(
        state,
        who,
        ep,
        (input, None),
        "endpoint.replay",
        "replayed",
        |h, ep, since, until| async move { endpoints::replay_missing(&h, &ep, since, until).await },
    )
    .await
}

/// Svix's `BulkReplayIn`: the window, and which of its deliveries.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkReplayIn {
    since: chrono::DateTime<Utc>,
    #[serde(default)]
    until: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// Svix's `MessageStatus`: 0 success, 1 pending, 2 fail, 3 sending.
    #[serde(default)]
    status: Option<i64>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    #[serde(default)]
    status_code_class: Option<i64>,
}

impl BulkReplayIn {
    /// The filter it names, or a 422 at the bad field.
    fn filter(&self) -> Result<ListFilter> {
        let event_types = check_event_types("eventTypes", self.event_types.clone())?;
        let status = match self.status {
            None => None,
            Some(n @ 0..=3) => Some(MessageStatus::from_i64(n)),
            Some(_) => return Err(Error::field(&["status"], "must be 0, 1, 2 or 3")),
        };
        let status_code_class = match self.status_code_class {
            None => None,
            Some(n) if n % 100 == 0 && (0..=500).contains(&n) => Some(n),
            Some(_) => {
                return Err(Error::field(
                    &["statusCodeClass"],
                    "must be one of 0, 100, 200, 300, 400, 500",
                ))
            }
        };
        Ok(ListFilter {
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            event_types: event_types.unwrap_or_default(),
            status,
            status_code_class,
            ..ListFilter::default()
        })
    }
}

/// Queues again every delivery of the window to this endpoint that the
/// filters take, delivered or not (Svix's `bulk-replay`): a background
/// task, as `recover`, finished with `data.messagesSent`.
#[utoipa::path(
    post, operation_id = "v1.endpoint.bulk-replay",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay",
    tag = "Endpoint",
    summary = "Send the window's deliveries to an endpoint again",
    params(crate::api::doc::EndpointPath),
    request_body = BulkReplayIn,
    responses((status = 202, description = "Accepted", body = crate::api::tasks::TaskStarted))
)]
pub async fn bulk_replay(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<BulkReplayIn>,
) -> Result<(StatusCode, Json<TaskStarted>)> {
    let filter = input.filter()?;
    let window = RecoverIn {
        since: input.since,
        until: input.until,
    };
    let ep = (app_id, endpoint_id);
    let kind = "endpoint.bulk-replay";
    window_task(
        state,
        who,
        ep,
        (window, None),
        kind,
        "messagesSent",
        |h, ep, since, until| async move {
            endpoints::bulk_replay(&h, &ep, since, until, &filter).await
        },
    )
    .await
}

/// Starts a background task of `kind` that runs `work` on the endpoint
/// (application, endpoint: ids or uids) over the window of `input`; it
/// finishes with how many deliveries `work` queued, as `data.{count}`.
async fn window_task<W, F>(
    state: Herald,
    who: Principal,
    (app_id, endpoint_id): (String, String),
    (input, reach): (RecoverIn, Option<std::time::Duration>),
    kind: &str,
    count: &'static str,
    work: W,
) -> Result<(StatusCode, Json<TaskStarted>)>
where
    W: FnOnce(Herald, Endpoint, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>) -> F,
    F: std::future::Future<Output = Result<u64>> + Send + 'static,
{
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    // A window reaching back further than `reach` is refused, with five
    // minutes' grace for clocks (as Svix gives).
    if let Some(reach) = reach {
        let reach = chrono::Duration::from_std(reach).unwrap_or(chrono::Duration::MAX);
        if input.since < Utc::now() - reach - chrono::Duration::minutes(5) {
            return Err(Error::field(
                &["since"],
                format!(
                    "cannot recover messages more than {} days old (attempts are kept that long)",
                    reach.num_days()
                ),
            ));
        }
    }
    let data = json!({"appId": app.id, "endpointId": ep.id, "since": input.since});
    let queued = work(state.clone(), ep, input.since, input.until);
    let run = async move { Ok(json!({ count: queued.await? })) };
    let task = tasks::start(&state, &app.org_id, kind, data, run).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskStarted::from(task))))
}
