//! The demo: a sample site served at `/demo` with the script tag and a form, and a
//! built-in sample handler whose webhooks land in an inbox the console shows — so that a
//! newcomer can walk the five steps in a browser right after starting footfall. Created
//! once per store in the demo's own account (`demo.account_id`), never in a configured
//! one; off when `demo.enabled` is false.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::Account;
use crate::domain::action::Action;
use crate::domain::event::EventType;
use crate::domain::form::{Form, default_required};
use crate::domain::handler::Handler;
use crate::domain::ids::{ActionId, FormId, HandlerId, SiteId, SiteKey};
use crate::domain::pipeline::{Pipeline, StatusType};
use crate::domain::site::{Site, SiteUrl};
use crate::domain::time::{Millis, now_ms};
use crate::store::{Sequence, Store, StoreResult, catalog, corrupt};

pub const HANDLER_CODE: &str = "demo-inbox";
const SITE_NAME: &str = "Demo shop";
const INBOX_SIZE: usize = 100;
/// The demo site's visit gap: short, so that the return visit of step 4 fires within a
/// minute of the form instead of after the configuration's 30 minutes.
pub const DEMO_VISIT_IDLE_SECONDS: u64 = 15;

pub struct Demo {
    pub account: Account,
    pub site_key: SiteKey,
    pub site_id: SiteId,
    pub form_id: FormId,
    pub handler_id: HandlerId,
    /// Where the sample handler receives its webhooks (trusted by the SSRF guard).
    pub inbox_url: String,
    inbox: Mutex<VecDeque<InboxItem>>,
}

/// One webhook as the sample handler received it.
#[derive(Debug, Clone, Serialize)]
pub struct InboxItem {
    pub received_at: Millis,
    pub webhook_id: String,
    /// The Standard Webhooks signature verified with the handler's secret.
    pub signature_valid: bool,
    pub body: Value,
}

impl Demo {
    /// Creates the demo's site, form, handler and site-visit action the first time; finds
    /// them afterwards.
    pub async fn bootstrap(
        store: &dyn Store,
        account: &Account,
        public_url: &str,
    ) -> StoreResult<Self> {
        let base = public_url.trim_end_matches('/');
        let inbox_url = format!("{base}/demo/inbox");
        if store.claim_once(&format!("demo:{}", account.id)).await? {
            create(store, account, base, &inbox_url).await?;
        }
        let sites: Vec<Site> = catalog::list(store, account.id).await?;
        let site = sites
            .into_iter()
            .find(|s| s.name == SITE_NAME)
            .ok_or_else(|| corrupt("the demo site is missing"))?;
        let forms: Vec<Form> = catalog::list(store, account.id).await?;
        let form = forms
            .into_iter()
            .find(|f| f.site_id == site.id)
            .ok_or_else(|| corrupt("the demo form is missing"))?;
        let handlers: Vec<Handler> = catalog::list(store, account.id).await?;
        let handler = handlers
            .into_iter()
            .find(|h| h.code == HANDLER_CODE)
            .ok_or_else(|| corrupt("the demo handler is missing"))?;
        Ok(Self {
            account: account.clone(),
            site_key: site.key,
            site_id: site.id,
            form_id: form.id,
            handler_id: handler.id,
            inbox_url,
            inbox: Mutex::new(VecDeque::new()),
        })
    }

    pub fn receive(&self, item: InboxItem) {
        let mut inbox = self.inbox.lock();
        inbox.push_front(item);
        inbox.truncate(INBOX_SIZE);
    }

    /// Newest first.
    pub fn inbox(&self) -> Vec<InboxItem> {
        self.inbox.lock().iter().cloned().collect()
    }
}

async fn create(
    store: &dyn Store,
    account: &Account,
    base: &str,
    inbox_url: &str,
) -> StoreResult<()> {
    let now = now_ms();
    let pipelines: Vec<Pipeline> = catalog::list(store, account.id).await?;
    let pipeline = pipelines
        .into_iter()
        .find(|p| p.is_main)
        .ok_or_else(|| corrupt("the account has no main pipeline"))?;
    let first_stage = pipeline
        .statuses
        .iter()
        .find(|s| s.status_type == StatusType::Normal)
        .ok_or_else(|| corrupt("the main pipeline has no working stage"))?;
    let host = url::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut hosts = vec![host];
    for extra in ["localhost", "127.0.0.1"] {
        if !hosts.iter().any(|h| h == extra) {
            hosts.push(extra.into());
        }
    }
    let site = Site {
        id: SiteId(store.next_id(Sequence::Site).await?),
        account_id: account.id,
        key: SiteKey::generate(),
        name: SITE_NAME.into(),
        url: format!("{base}/demo"),
        hosts,
        respect_opt_out: false,
        consent: Default::default(),
        consent_days: None,
        visit_idle_seconds: Some(DEMO_VISIT_IDLE_SECONDS),
        created_at: now,
    };
    catalog::put(store, &site).await?;
    let form = Form {
        id: FormId::generate(),
        account_id: account.id,
        name: "Demo contact form".into(),
        site_id: site.id,
        pipeline_id: pipeline.id,
        success_url: None,
        required: default_required(),
        created_at: now,
    };
    catalog::put(store, &form).await?;
    let mut schema = serde_json::Map::new();
    schema.insert(
        "message".into(),
        json!({"name": "Message to send", "type": "textarea", "required": true}),
    );
    let handler = Handler {
        id: HandlerId(store.next_id(Sequence::Handler).await?),
        account_id: account.id,
        code: HANDLER_CODE.into(),
        name: "Demo inbox".into(),
        webhook_url: inbox_url.to_owned(),
        secret: Handler::generate_secret(),
        settings: schema,
        action_multiple: true,
        created_at: now,
    };
    catalog::put(store, &handler).await?;
    let mut settings = serde_json::Map::new();
    settings.insert(
        "message".into(),
        json!("Hi {{contact.name}}, welcome back to the demo shop!"),
    );
    let action = Action {
        id: ActionId(store.next_id(Sequence::Action).await?),
        account_id: account.id,
        pipeline_id: pipeline.id,
        status_ids: vec![first_stage.id],
        event: EventType::SiteVisit,
        handler_id: handler.id,
        handler: handler.code.clone(),
        site_url: SiteUrl::parse(&format!("{base}/demo")).ok(),
        delay_seconds: 0,
        conditions: None,
        settings,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    catalog::put(store, &action).await?;
    tracing::info!(account = %account.id, site = %site.id, "created the demo site, form, handler and action");
    Ok(())
}
