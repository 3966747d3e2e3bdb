//! `GET /api/v4/leads/export.csv`: the list's filters, one CSV row per lead with its
//! stage, contact, source and visits, quoted where it must be — on both stores.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, Receiver, TOKEN, TestApp, setup, submit_form};

async fn export_has_one_quoted_row_per_filtered_lead(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let s = setup(&app, &receiver, 0).await;
    let (_, vid) = app
        .beacon(
            &s.site_key,
            None,
            "https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=dec",
        )
        .await;
    let (anna, uid, _) = submit_form(&app, &s.form_id, vid.as_deref(), "Anna \"A\", Jr").await;
    let (status, body) = app
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (boris, _, _) = submit_form(&app, &s.form_id, None, "=Boris").await;

    let export = |query: &str| {
        let request = app
            .client
            .get(app.url(&format!("/api/v4/leads/export.csv{query}")))
            .bearer_auth(TOKEN);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let kind = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, kind, response.text().await.unwrap())
        }
    };
    let (status, kind, csv) = export("").await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(kind.as_deref(), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv}"); // header, two leads, the empty end
    assert_eq!(
        lines[0],
        "id,name,pipeline,stage,contact_name,contact_phone,contact_email,created_at,first_touch_utm_source,first_touch_utm_medium,first_touch_utm_campaign,first_touch_referrer,last_touch_utm_source,last_touch_utm_medium,last_touch_utm_campaign,visits,last_visit_at"
    );
    // Newest first: Boris (no browser history), then Anna.
    assert!(
        lines[1].starts_with(&format!(
            "{boris},Contact: =Boris,Sales,Unsorted,\"'=Boris\",+7 900 "
        )),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",,,,,,,,0,"), "{}", lines[1]);
    let anna_row = lines[2];
    assert!(
        anna_row.starts_with(&format!(
            "{anna},\"Contact: Anna \"\"A\"\", Jr\",Sales,First contact,\"Anna \"\"A\"\", Jr\","
        )),
        "{anna_row}"
    );
    assert!(
        anna_row.contains(",news,email,dec,https://www.google.com/,news,email,dec,1,"),
        "{anna_row}"
    );

    // The list's filters apply; unknown parameters are refused.
    let (status, _, csv) = export(&format!("?filter[id]={anna}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.split("\r\n").count(), 3, "{csv}");
    let (status, _, body) = export("?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_export_on_redis() {
    export_has_one_quoted_row_per_filtered_lead(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_export_on_the_embedded_store() {
    export_has_one_quoted_row_per_filtered_lead(Backend::Memory).await;
}
