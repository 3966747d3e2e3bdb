//! Baseline (a): an actix-web handler that reads the request body and answers 204 — the
//! ceiling of the HTTP layer on this machine. It answers form submissions the same way.
//! `baseline-bare PORT`.

use actix_web::{App, HttpResponse, HttpServer, web};

async fn collect(_body: web::Bytes) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8181);
    HttpServer::new(|| {
        App::new()
            .route("/v1/collect", web::post().to(collect))
            .route("/v1/forms/{id}/submit", web::post().to(collect))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
