//! `GET /api/v4/stream`: server-sent events of the token's account — one `lead` event
//! each time a lead changes (a visit, a fired event, a delivery attempt, a move, a note),
//! and a comment every 15 s so that proxies keep the connection open. Read it with
//! `fetch` (which can send the Authorization header), not `EventSource`. A token holds at
//! most `live::MAX_STREAMS_PER_ACCOUNT` streams per instance; one more is answered 429.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, web};
use tokio::sync::broadcast::error::RecvError;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Auth, Refused};
use crate::http::problem::Problem;
use crate::service::Services;

const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(live_stream);
}

/// Server-sent events: `event: lead` with `{"account_id", "lead_id", "what"}` when a
/// lead of the account changes; `event: reload` when updates were missed.
#[utoipa::path(tag = "live",
    responses((status = 200, description = "An endless stream of server-sent events", content_type = "text/event-stream", body = String),
              Refused))]
#[get("/stream")]
async fn live_stream(auth: Auth, services: web::Data<Services>) -> Result<HttpResponse, Problem> {
    let updates = services
        .live
        .subscribe(auth.0.id)
        .map_err(|e| Problem::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()))?;
    let stopping = services.shutdown.clone();
    let beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    let first = Bytes::from_static(b"retry: 2000\n: connected\n\n");
    let events = futures_util::stream::unfold(
        (updates, beat, Some(first)),
        move |(mut updates, mut beat, first)| {
            let stopping = stopping.clone();
            async move {
                if let Some(first) = first {
                    return Some((Ok::<_, actix_web::Error>(first), (updates, beat, None)));
                }
                loop {
                    tokio::select! {
                        // The service is stopping: end the stream so that it does not hold
                        // the shutdown (the console reconnects to another instance).
                        _ = stopping.cancelled() => return None,
                        update = updates.recv() => match update {
                            Ok(u) => {
                                let Ok(data) = serde_json::to_string(&u) else {
                                    continue;
                                };
                                let chunk = Bytes::from(format!("event: lead\ndata: {data}\n\n"));
                                return Some((Ok(chunk), (updates, beat, None)));
                            }
                            // Too slow a reader missed updates: tell it to reload everything.
                            Err(RecvError::Lagged(_)) => {
                                let chunk = Bytes::from_static(b"event: reload\ndata: {}\n\n");
                                return Some((Ok(chunk), (updates, beat, None)));
                            }
                            Err(RecvError::Closed) => return None,
                        },
                        _ = beat.tick() => {
                            return Some((Ok(Bytes::from_static(b": ping\n\n")), (updates, beat, None)));
                        }
                    }
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}
