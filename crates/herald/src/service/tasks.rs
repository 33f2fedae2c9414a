//! Background tasks, as Svix has them: work answered `running` at once and
//! finished behind (`endpoint.recover`, `endpoint.replay`,
//! `application.purge_content`), its end recorded in the store so
//! `/api/v1/background-task` shows how it went. A task cut off by a restart
//! stays `running` in the list; the work it did is in the store.

use std::future::Future;

use chrono::Utc;
use herald_core::id::{new_id, IdPrefix};
use herald_store::BackgroundTask;
use serde_json::{json, Value};

use super::{Herald, Result};

/// Records a task of `kind` for the organisation, `running` with `data`,
/// and runs `work` behind it. What `work` answers (a JSON object) is added
/// to the task's data when it has finished; its error, as `error`, when it
/// has failed. Returns the task as first recorded.
pub async fn start<W>(
    herald: &Herald,
    org_id: &str,
    kind: &str,
    data: Value,
    work: W,
) -> Result<BackgroundTask>
where
    W: Future<Output = Result<Value>> + Send + 'static,
{
    let now = Utc::now();
    let task = BackgroundTask {
        id: new_id(IdPrefix::Task),
        org_id: org_id.to_string(),
        task: kind.to_string(),
        status: "running".into(),
        data,
        created_at: now,
        updated_at: now,
    };
    herald.store.save_task(&task).await?;
    let mut done = task.clone();
    let store = herald.store.clone();
    tokio::spawn(async move {
        match work.await {
            Ok(Value::Object(fields)) => {
                done.status = "finished".into();
                for (name, value) in fields {
                    done.data[name] = value;
                }
            }
            Ok(other) => {
                done.status = "finished".into();
                done.data["result"] = other;
            }
            Err(e) => {
                tracing::warn!(error = %e, task = %done.id, kind = %done.task, "background task failed");
                done.status = "failed".into();
                done.data["error"] = json!(e.to_string());
            }
        }
        done.updated_at = Utc::now();
        if let Err(e) = store.save_task(&done).await {
            tracing::error!(error = %e, task = %done.id, "cannot record the end of a background task");
        }
    });
    Ok(task)
}
