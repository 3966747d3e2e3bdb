//! footfall on Redis Cluster: a local three-master cluster, two footfall processes behind
//! a (simulated) load balancer that sends each request to either, the five steps end to
//! end, and a thousand delayed jobs spread over the schedule's shards on every node.

use crate::common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::jobs::{Deployment, by_event, delivered_by, schedule_jobs, wait_for_events};
use crate::common::redis_deployments::RedisCluster;
use crate::common::{Receiver, setup, signature_verifies};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_steps_work_across_two_instances_on_a_cluster() {
    let _serial = common::HEAVY.lock().await;
    let cluster = RedisCluster::start(3);
    let deployment = Deployment::on_cluster(&cluster.urls());
    let (a, b) = (deployment.start(), deployment.start());
    let (a, b) = (deployment.client(&a), deployment.client(&b));
    let receiver = Receiver::start().await;
    let s = setup(&a, &receiver, 0).await;
    // A 1 s visit gap, so that Anna's browser can come back for the visit that fires.
    let (status, site) = a
        .patch(
            &format!("/api/v4/sites/{}", s.site_id),
            json!({"visit_idle_seconds": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");

    // Each step goes to the other instance than the step before.
    let (status, vid) = b.beacon(&s.site_key, None, "https://shop.example/").await;
    assert_eq!(status, StatusCode::OK);
    let vid = vid.unwrap();
    let (lead, uid, _) = common::submit_form(&a, &s.form_id, Some(&vid), "Anna").await;
    let (status, _) = b
        .post(
            &format!("/api/v4/leads/unsorted/{uid}/accept"),
            json!({"status_id": s.pipeline.first_contact}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The anonymous page view (written through B) is on the lead's timeline (read through A).
    let (_, timeline) = a.get(&format!("/api/v4/leads/{lead}/timeline")).await;
    let page_views = timeline["_embedded"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "page_view")
        .count();
    assert_eq!(page_views, 1);

    // The visit that fires: Anna's browser comes back after the visit gap. (A second
    // browser of hers used to join the lead by sending her email: no longer, since anyone
    // can type someone's email.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = b
        .beacon(&s.site_key, Some(&vid), "https://shop.example/pricing")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    assert!(signature_verifies(&s.handler_secret, &received[0]));
    let body = received[0].json();
    assert_eq!(body["event"]["type"], 18);
    assert_eq!(body["event"]["data"]["id"], lead);
    assert_eq!(body["meta"]["visit"]["url"], "https://shop.example/pricing");

    // The data is spread over the nodes (hash tags keep each step in one slot).
    let keys = cluster.keys_per_node();
    println!("keys per node: {keys:?}");
    assert!(keys.iter().filter(|k| **k > 0).count() >= 2, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_delayed_jobs_are_delivered_once_through_two_instances_on_a_cluster() {
    let _serial = common::HEAVY.lock().await;
    let cluster = RedisCluster::start(3);
    let deployment = Deployment::on_cluster(&cluster.urls());
    let (a, b) = (deployment.start(), deployment.start());
    let apps = [deployment.client(&a), deployment.client(&b)];
    let receiver = Receiver::start().await;
    let s = setup(&apps[0], &receiver, 3).await;

    schedule_jobs(&apps, &s, 1000).await;
    let counts = wait_for_events(&receiver, 1000, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = if counts.len() == 1000 {
        by_event(&receiver)
    } else {
        counts
    };
    let twice = counts.values().filter(|c| **c > 1).count();
    let by = [delivered_by(&apps[0]).await, delivered_by(&apps[1]).await];
    println!(
        "cluster, 1000 jobs: {} delivered, {twice} twice; instance A delivered {}, B {}; keys per node {:?}",
        counts.len(),
        by[0],
        by[1],
        cluster.keys_per_node()
    );
    assert_eq!(counts.len(), 1000, "some jobs were not delivered");
    assert_eq!(twice, 0, "some jobs were delivered twice");
    // Shared, not one instance doing it all while the other idles.
    assert!(
        by.iter().all(|n| *n > 0),
        "both instances deliver: A delivered {}, B {}",
        by[0],
        by[1]
    );
}
