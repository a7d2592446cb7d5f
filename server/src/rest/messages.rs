//! `/api/v1/messages`: write a message (sent only after approval when Settings >
//! Messages require it) and read one.

use super::{
    auth::{Authed, CreateMessages, ReadMessages},
    error::{ApiError, ErrorBody},
    schema::EmailAddress,
};
use app::error::AppError;
use axum::{
    extract::{rejection::JsonRejection, Path},
    http::StatusCode,
    Json,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageBody {
    #[schema(minimum = 1, maximum = 9007199254740991_i64)]
    app_id: i64,
    /// `email`, `webhook` or `sms`.
    #[schema(pattern = "^(email|webhook|sms)$", max_length = 7)]
    channel: String,
    /// Email: up to 50 addresses.
    #[serde(default)]
    #[schema(max_items = 50, value_type = Vec<EmailAddress>)]
    recipients: Vec<String>,
    /// SMS: up to 50 numbers in E.164 form (`+905551234567`).
    #[serde(default)]
    #[schema(max_items = 50, value_type = Vec<String>)]
    to: Vec<String>,
    /// SMS: one of the app's sender numbers (an SMS key: its own number only).
    #[serde(default)]
    #[schema(max_length = 32, example = "+905551234567")]
    from: String,
    /// Webhook: one of the URLs registered for the app.
    #[serde(default)]
    #[schema(max_length = 2048)]
    webhook_url: String,
    /// At most 200 characters, one line (optional for SMS: a title for the panel's list).
    #[serde(default)]
    #[schema(max_length = 200)]
    subject: String,
    /// At most 32 KiB (an SMS: 1600 characters).
    #[schema(min_length = 1, max_length = 32768)]
    body: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Accepted {
    /// `msg_…`
    id: String,
    /// `pending_approval` (an approver must confirm it in the panel) or `queued`.
    status: String,
}

/// Writes a message. With approval required it waits for a person other than the
/// key's owner to approve it in the panel: a key alone cannot send anything.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", security(("bearer" = [])), request_body = MessageBody,
    description = "Writes a message of the key's own app (another app: 403 insufficient_permissions) as the key's owner. Needs message.create. 202 with `pending_approval` when Settings > Messages require approval (nothing is sent until someone other than the owner approves it in the panel), else `queued`. The whole request is limited to KEYWARD_MAX_BODY_BYTES (default 512 KiB; larger: 413 payload_too_large) and the body field to 32 KiB.",
    responses((status = 202, description = "Accepted", body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(super) async fn create_message(
    authed: Authed<CreateMessages>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (api, grant) = (&authed.api, authed.grant()?);
    let b = api.body(body)?;
    // (The domain refuses it too; here the refusal names the key's app and is counted.)
    if !authed.principal.acts_for_app(b.app_id) {
        return Err(api.other_app(&authed.key));
    }
    if !authed.key.may_write(&b.channel, &b.from) {
        return Err(api.channel_not_allowed(&authed.key.key_id));
    }
    // Numbers in `to`, addresses in `recipients`: each only for its channel.
    let (recipients, misplaced) = if b.channel == "sms" {
        (&b.to, (!b.recipients.is_empty()).then_some("recipients"))
    } else {
        (&b.recipients, (!b.to.is_empty()).then_some("to"))
    };
    // At most 50 entries as sent (repeats included), as the schema says.
    if recipients.len() > app::core::messages::MAX_RECIPIENTS {
        let field = if b.channel == "sms" {
            "to"
        } else {
            "recipients"
        };
        return Err(api.app_err(AppError::validation(
            field,
            format!(
                "At most {} recipients.",
                app::core::messages::MAX_RECIPIENTS
            ),
        )));
    }
    if let Some(field) = misplaced {
        return Err(api.app_err(AppError::validation(
            field,
            "SMS take their numbers in `to`; email takes its addresses in `recipients`.",
        )));
    }
    let m = app::core::messages::create(
        &api.state,
        &grant,
        &api.origin(),
        &app::core::messages::Draft {
            app_id: b.app_id,
            channel: &b.channel,
            recipients: &recipients.join("\n"),
            webhook_url: &b.webhook_url,
            sender: &b.from,
            subject: &b.subject,
            body: &b.body,
        },
    )
    .await
    // The domain names fields as the panel's form does; this body calls an SMS's
    // numbers `to` and the sender number `from`.
    .map_err(|e| match e {
        AppError::Validation { field, message } => {
            let field = match (field.as_str(), b.channel == "sms") {
                ("recipients", true) => "to".to_owned(),
                ("sender", _) => "from".to_owned(),
                _ => field,
            };
            api.app_err(AppError::Validation { field, message })
        }
        e => api.app_err(e),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: m.id,
            status: m.status,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "msg_…", pattern = "^msg_[a-z2-7]{16}$", max_length = 20)),
    description = "A message of the key's own app that the key's owner wrote (any of the app's messages with message.approve): payload, status, approvals, delivery attempts. Needs message.create or message.approve.",
    responses((status = 200, description = "The message", body = app::messages::MessageInfo), (status = 404, body = ErrorBody)))]
pub(super) async fn get_message(
    Authed {
        api,
        principal,
        key,
        ..
    }: Authed<ReadMessages>,
    Path(id): Path<String>,
) -> Result<Json<app::messages::MessageInfo>, ApiError> {
    let m = app::core::messages::visible(&api.state.db, &principal, &id).await;
    // A channel key reads only the messages it wrote; any other id, existing or not,
    // gets the same answer.
    if key.channel.is_some() {
        return match m {
            Ok(m) if m.created_by_key.as_deref() == Some(key.key_id.as_str()) => Ok(Json(m)),
            Err(e @ (AppError::Unavailable { .. } | AppError::Internal)) => Err(api.app_err(e)),
            _ => Err(api.channel_not_allowed(&key.key_id)),
        };
    }
    // (Another app's message is "not found" to a key: `Principal::acts_for_app`.)
    let m = m.map_err(|e| api.app_err(e))?;
    Ok(Json(m))
}
