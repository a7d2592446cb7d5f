//! `GET /audit/export.csv`: the audit events the page's filters select, as CSV, for a
//! signed-in holder of `audit.view`. A plain panel route (sessions, the sign-in gate and
//! the panel's network rules apply), not a server function: the file is streamed a
//! chunk at a time, so neither the server's memory nor one database query grows with
//! the log. The export is audited before the first row is read.

use app::audit::AuditFilter;
use app::auth::ssr::{current_user, ClientIp};
use app::core::audit::{read::Export, Origin};
use app::error::AppError;
use app::roles::Permission;
use app::state::AppState;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, StatusCode},
    response::Response,
};

fn refusal(e: &AppError) -> Response {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(s) = e.retry_after() {
        r = r.header(header::RETRY_AFTER, s);
    }
    r.body(Body::from(format!("{e}\n"))).unwrap_or_default()
}

pub async fn export(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let Some(session) = parts.extensions.get::<tower_sessions::Session>().cloned() else {
        return refusal(&AppError::Internal);
    };
    let who = match current_user(&state, &session).await {
        Ok(Some(who)) => who,
        Ok(None) => return refusal(&AppError::Unauthenticated),
        Err(e) => return refusal(&e),
    };
    let grant = match who.principal.require(Permission::AuditView) {
        Ok(g) => g,
        Err(e) => return refusal(&e),
    };
    // The page's own filter names; anything else in the query is ignored, and each
    // value is checked (length, shape) by the domain like the page's.
    // A download started by another site (a link or a form that navigates here) is
    // refused: it would export, and audit an export, in the user's name.
    if parts
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return refusal(&AppError::Refused(
            "An export starts from the audit page of this site.".into(),
        ));
    }
    let mut filter = AuditFilter::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        if !seen.insert(k.clone()) {
            return refusal(&AppError::validation(
                "query",
                format!("The filter {k} is given twice: set it once on the audit page."),
            ));
        }
        let slot = match k.as_ref() {
            "actor" => &mut filter.actor,
            "action" => &mut filter.action,
            "target" => &mut filter.target,
            "outcome" => &mut filter.outcome,
            "ip" => &mut filter.ip,
            "from" => &mut filter.from,
            "to" => &mut filter.to,
            "before" => &mut filter.before,
            _ => continue,
        };
        *slot = v.into_owned();
    }
    let origin = Origin {
        ip: Some(ClientIp::from_parts(&parts, &state).0.to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    };
    let now = state.clock.now();
    let export = match Export::start(&state.db, now, &grant, &origin, &filter).await {
        Ok(x) => x,
        Err(e) => return refusal(&e),
    };
    let day = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| {
            let d = t.date();
            format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_default();
    // The header row first, then a chunk of rows per step until a short chunk.
    let header_row = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from(app::core::audit::read::csv_bytes(
            true,
            &[],
        )))
    });
    // Each chunk is read for a user who is still signed in, active and allowed: a
    // disabled user's or a demoted role's download stops at the next chunk.
    let rows = futures_util::stream::unfold(Some(export), move |x| {
        let (state, session) = (state.clone(), session.clone());
        async move {
            let mut x = x?;
            let still = matches!(
                current_user(&state, &session).await,
                Ok(Some(ref who)) if who.principal.has(Permission::AuditView)
            );
            if !still {
                tracing::info!("an audit export stopped: its user is no longer allowed");
                return Some((Err(std::io::Error::other("no longer allowed")), None));
            }
            match x.next_chunk().await {
                Ok(chunk) if chunk.is_empty() => None,
                Ok(chunk) => Some((
                    Ok(bytes::Bytes::from(app::core::audit::read::csv_bytes(
                        false, &chunk,
                    ))),
                    Some(x),
                )),
                // The status is sent already: the download ends short, and says why in
                // the log (the browser shows it as failed).
                Err(e) => {
                    tracing::warn!(error = %e, "the audit export stopped");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    use futures_util::StreamExt as _;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"keyward-audit-{day}.csv\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(
            // Fused: the gzip layer polls its body once more after the end.
            header_row.chain(rows).fuse(),
        ))
        .unwrap_or_default()
}
