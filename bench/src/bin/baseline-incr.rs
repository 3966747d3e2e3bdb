//! Baseline (b): the bare handler plus exactly one Redis round trip (`INCR`) on a
//! `ConnectionManager` — the ceiling of any design that consults Redis once per page view.
//! It answers form submissions the same way (the forms benchmark's baseline).
//! `baseline-incr PORT REDIS_URL`.

use actix_web::{App, HttpResponse, HttpServer, web};
use redis::aio::ConnectionManager;

async fn collect(_body: web::Bytes, con: web::Data<ConnectionManager>) -> HttpResponse {
    let mut con = con.get_ref().clone();
    match redis::cmd("INCR")
        .arg("baseline:beacons")
        .query_async::<i64>(&mut con)
        .await
    {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8182);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).map_err(std::io::Error::other)?;
    let con = ConnectionManager::new(client)
        .await
        .map_err(std::io::Error::other)?;
    let data = web::Data::new(con);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/collect", web::post().to(collect))
            .route("/v1/forms/{id}/submit", web::post().to(collect))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
