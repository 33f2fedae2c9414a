//! What housekeeping reads and reports: the metrics' counts, pruning, the
//! sealed values re-sealing walks.

/// What the whole database holds now, for the metrics: deliveries due and
/// endpoints by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Deliveries whose next attempt is due (leased ones included).
    pub due: i64,
    pub endpoints_active: i64,
    pub endpoints_failing: i64,
    pub endpoints_paused: i64,
    pub endpoints_disabled: i64,
    pub endpoints_auto_disabled: i64,
}

/// What one [`Store::prune`](crate::Store::prune) call removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Message payloads replaced by `{}`.
    pub payloads: u64,
    /// Attempts deleted.
    pub attempts: u64,
    /// Idempotency records older than [`IDEMPOTENCY_RETENTION`] deleted.
    pub idempotency: u64,
    /// Portal grants deleted after their sessions ended.
    pub grants: u64,
}

impl PruneReport {
    pub fn is_empty(&self) -> bool {
        *self == PruneReport::default()
    }
}

impl std::ops::AddAssign for PruneReport {
    fn add_assign(&mut self, other: PruneReport) {
        self.payloads += other.payloads;
        self.attempts += other.attempts;
        self.idempotency += other.idempotency;
        self.grants += other.grants;
    }
}

/// The stored secrets, for re-sealing them under the current key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedColumn {
    /// `endpoint_secret.key`: one value, owner = the endpoint id.
    EndpointSecret,
    /// `endpoint.headers`: a JSON object whose values are sealed one by one,
    /// owner = the endpoint id.
    EndpointHeaders,
    /// `idempotency.body`: owner = scope and key, joined by a newline.
    IdempotencyBody,
    /// `endpoint.transformation_variables`: a JSON object sealed whole,
    /// owner = the endpoint id.
    TransformationVariables,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 4] = [
        SealedColumn::EndpointSecret,
        SealedColumn::EndpointHeaders,
        SealedColumn::IdempotencyBody,
        SealedColumn::TransformationVariables,
    ];

    /// What a value of this column is bound to when sealed: its column and
    /// its owner, so a value copied to another row or column does not open.
    pub fn context(self, owner: &str) -> String {
        let column = match self {
            SealedColumn::EndpointSecret => "endpoint_secret.key",
            SealedColumn::EndpointHeaders => "endpoint.headers",
            SealedColumn::IdempotencyBody => "idempotency.body",
            SealedColumn::TransformationVariables => "endpoint.transformation_variables",
        };
        format!("{column}:{owner}")
    }
}

/// One stored value of a [`SealedColumn`], as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedValue {
    pub owner: String,
    pub value: Vec<u8>,
}
