//! An endpoint's signing secret (read, rotate) and its custom headers.

use super::*;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    /// The `whsec_` key, or for an ed25519 (`whsk_`) one its public `whpk_`
    /// half, as Svix answers: the private key never leaves Herald.
    key: String,
    /// Herald's addition for `whsk_` (ed25519) keys: the `whpk_` key
    /// receivers verify `v1a` signatures with (the same as `key`). Absent
    /// for `whsec_` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

impl SecretOut {
    fn new(key: String) -> SecretOut {
        match EndpointSecret::parse(&key)
            .ok()
            .and_then(|k| k.public_key())
        {
            Some(public) => SecretOut {
                key: public.clone(),
                public_key: Some(public),
            },
            None => SecretOut {
                key,
                public_key: None,
            },
        }
    }
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.get-secret",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
    tag = "Endpoint",
    summary = "Get an endpoint's signing secret",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = SecretOut))
)]
pub async fn get_secret(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<SecretOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let current = endpoints::current_key(&state, &ep)
        .await?
        .ok_or_else(|| Error::Internal(format!("endpoint {} has no current key", ep.id)))?;
    Ok(Json(SecretOut::new(current)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateIn {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    grace_period_seconds: Option<u32>,
    /// Herald's addition: the kind of key to generate when `key` is not
    /// given, `"hmac"` (`whsec_`, the default, as Svix) or `"ed25519"`
    /// (`whsk_`). With a `key`, it must name that key's kind.
    #[serde(default)]
    key_type: Option<KeyType>,
}

#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Hmac,
    Ed25519,
}

impl From<KeyType> for KeyKind {
    fn from(t: KeyType) -> KeyKind {
        match t {
            KeyType::Hmac => KeyKind::Hmac,
            KeyType::Ed25519 => KeyKind::Ed25519,
        }
    }
}

/// Makes a new key current; the old one keeps signing through the grace period,
/// so receivers can switch without losing a message. Answers with the new key
/// (the SDKs parse it).
#[utoipa::path(
    post, operation_id = "v1.endpoint.rotate-secret",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    tag = "Endpoint",
    summary = "Rotate an endpoint's signing secret",
    params(crate::api::doc::EndpointPath),
    request_body = Option<RotateIn>,
    responses((status = 200, description = "OK", body = SecretOut))
)]
pub async fn rotate_secret(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<SecretOut>> {
    let input: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        super::super::extract::parse_json(&body)?
    };
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    let grace = input
        .grace_period_seconds
        .unwrap_or(endpoints::DEFAULT_GRACE_SECONDS);
    let key = endpoints::rotate_secret(
        &state,
        &ep,
        input.key.as_deref(),
        input.key_type.map(KeyKind::from),
        grace,
    )
    .await?;
    Ok(Json(SecretOut::new(key)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HeadersOut {
    headers: BTreeMap<String, String>,
    sensitive: Vec<String>,
}

fn headers_out(ep: &Endpoint) -> HeadersOut {
    let mut headers = BTreeMap::new();
    let mut sensitive = Vec::new();
    for (k, v) in &ep.headers {
        if is_sensitive(k) {
            sensitive.push(k.clone());
        } else {
            headers.insert(k.clone(), v.clone());
        }
    }
    HeadersOut { headers, sensitive }
}

#[utoipa::path(
    get, operation_id = "v1.endpoint.get-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Get an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    responses((status = 200, description = "OK", body = HeadersOut))
)]
pub async fn get_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<HeadersOut>> {
    let app = load_app(&state, &who, &app_id).await?;
    let ep = load_endpoint(&state, &app, &endpoint_id).await?;
    Ok(Json(headers_out(&ep)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct HeadersIn {
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatchIn {
    headers: BTreeMap<String, Option<String>>,
    /// The SDKs' way to remove headers (a `null` value in `headers` works too).
    #[serde(default)]
    delete_headers: Vec<String>,
}

#[utoipa::path(
    put, operation_id = "v1.endpoint.put-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Set an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    request_body = HeadersIn,
    responses((status = 204, description = "No content"))
)]
pub async fn put_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersIn>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    ep.headers = check_headers(&input.headers)?;
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// PATCH merges: a header set to `null` is removed.
#[utoipa::path(
    patch, operation_id = "v1.endpoint.patch-headers",
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    tag = "Endpoint",
    summary = "Patch an endpoint's headers",
    params(crate::api::doc::EndpointPath),
    request_body = HeadersPatchIn,
    responses((status = 204, description = "No content"))
)]
pub async fn patch_headers(
    State(state): State<Herald>,
    who: Principal,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    Body(input): Body<HeadersPatchIn>,
) -> Result<StatusCode> {
    let app = load_app(&state, &who, &app_id).await?;
    let mut ep = load_endpoint(&state, &app, &endpoint_id).await?;
    for name in &input.delete_headers {
        remove_header(&mut ep.headers, name);
    }
    let mut set = BTreeMap::new();
    for (name, value) in input.headers {
        match value {
            Some(v) => {
                set.insert(name, v);
            }
            None => remove_header(&mut ep.headers, &name),
        }
    }
    set_headers(&mut ep.headers, check_headers(&set)?);
    ep.updated_at = Utc::now();
    endpoints::update(&state, &app, &ep).await?;
    Ok(StatusCode::NO_CONTENT)
}
