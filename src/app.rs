//! Builds the running service from settings: the store, the services, the scheduler and
//! the HTTP server (binding port 0 gives a free port, as the tests do).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_actix_web::AppExt;

use crate::config::Settings;
use crate::delivery::scheduler::Scheduler;
use crate::domain::ids::AccountId;
use crate::domain::quota::AddressTags;
use crate::domain::time::DAY_SECS;
use crate::domain::visitor::VisitorSigner;
use crate::http;
use crate::http::body::{ApiBodyLimit, BodyTimeout};
use crate::http::limits::RateLimits;
use crate::service::demo::Demo;
use crate::service::{Accounts, Live, Services, accounts};
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisOptions, RedisStore};

pub struct Application {
    port: u16,
    server: Server,
    services: Arc<Services>,
    scheduler: JoinHandle<()>,
    shutdown: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cookie keys: {0}")]
    Keys(#[from] crate::domain::visitor::KeyError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot build the webhook client: {0}")]
    Client(#[from] reqwest::Error),
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The store the settings name: Redis Cluster, a primary found through Redis Sentinel, one
/// Redis server, or the embedded store.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StartError> {
    let options = RedisOptions {
        key_prefix: settings.store.key_prefix.clone(),
        schedule_shards: settings.delivery.schedule_shards,
        event_retention_secs: settings.delivery.event_retention_days * DAY_SECS,
        response_timeout: Duration::from_millis(settings.store.response_timeout_ms),
        durable_writes: settings.store.durable_writes.forced(),
    };
    Ok(if !settings.store.redis_cluster_urls.is_empty() {
        Arc::new(RedisStore::connect_cluster(&settings.store.redis_cluster_urls, options).await?)
    } else if !settings.store.redis_sentinels.is_empty() {
        Arc::new(
            RedisStore::connect_sentinel(
                &settings.store.redis_sentinels,
                &settings.store.redis_sentinel_master,
                &settings.store.redis_url,
                options,
            )
            .await?,
        )
    } else if !settings.store.redis_url.is_empty() {
        Arc::new(RedisStore::connect(&settings.store.redis_url, options).await?)
    } else {
        Arc::new(MemoryStore::with_event_retention(Duration::from_secs(
            settings.delivery.event_retention_days * DAY_SECS,
        )))
    })
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let store = open_store(&settings).await?;
        Self::build_with_store(settings, store).await
    }

    /// The service on a store the caller opened (a test that inspects the embedded store
    /// keeps its own handle on it).
    pub async fn build_with_store(
        settings: Settings,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        let settings = Arc::new(settings);
        store.ping().await?;
        if settings.uses_redis() {
            tracing::info!(store = %store.describe(), "using Redis");
        } else {
            tracing::warn!(
                "using the EMBEDDED IN-MEMORY STORE: nothing is kept when footfall stops; set store.redis_url to keep data"
            );
        }
        let signer = if settings.cookies.keys.is_empty() {
            tracing::warn!(
                "cookies.keys is empty: visitor ids are signed with a random key and will not be recognised after a restart"
            );
            VisitorSigner::ephemeral(&settings.cookies.name)
        } else {
            VisitorSigner::from_base64_keys(&settings.cookie_keys(), &settings.cookies.name)?
        };
        let accounts = Accounts::from_settings(&settings.all_accounts());
        if settings.accounts.is_empty() && !settings.demo.enabled {
            tracing::warn!(
                "no [[accounts]] configured: the management API will refuse every token"
            );
        }
        accounts::bootstrap(&*store, &accounts).await?;
        // The demo lives in an account of its own (`Settings::validate` checked that no
        // configured account has its id).
        let demo = match accounts.get(AccountId(settings.demo.account_id)) {
            Some(account) if settings.demo.enabled => {
                Some(Demo::bootstrap(&*store, account, &settings.server.public_url).await?)
            }
            _ => None,
        };
        let address_tags = AddressTags::new(signer.derive("quota addresses"));
        let services = Arc::new(Services {
            settings: settings.clone(),
            live: Live::start(store.clone()),
            store,
            signer,
            accounts,
            sites: Default::default(),
            forms: Default::default(),
            snapshots: Default::default(),
            scheduler_wake: Arc::new(Notify::new()),
            quota_gate: Default::default(),
            address_tags,
            demo,
            shutdown: CancellationToken::new(),
        });

        let shutdown = services.shutdown.clone();
        let scheduler = Scheduler::new(services.clone())?;
        let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
        tokio::spawn(services.clone().run_retention());

        let listener = TcpListener::bind(&settings.server.bind)
            .map_err(|e| StartError::Bind(settings.server.bind.clone(), e))?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let server = Self::server(listener, services.clone(), &settings)
            .map_err(|e| StartError::Bind(settings.server.bind.clone(), e))?;
        Ok(Self {
            port,
            server,
            services,
            scheduler,
            shutdown,
        })
    }

    fn server(
        listener: TcpListener,
        services: Arc<Services>,
        settings: &Settings,
    ) -> std::io::Result<Server> {
        let data = web::Data::from(services);
        let limits = web::Data::new(RateLimits::new(&settings.limits));
        let metrics = web::Data::new(crate::telemetry::metrics_handle());
        let api_limit = ApiBodyLimit(settings.limits.api_body_bytes);
        let body_timeout = BodyTimeout(Duration::from_millis(settings.limits.body_timeout_ms));
        // Checked by `Settings::validate`; an unchecked list trusts no proxy.
        let proxy_trust = settings.proxy_trust().unwrap_or_default();
        let static_dir = settings.server.static_dir.clone();
        if !static_dir.join("t.js").is_file() {
            tracing::warn!(
                static_dir = %static_dir.display(),
                "no t.js in the static folder: the tracker, console and demo pages will answer 404; \
                 run footfall from its checkout or set server.static_dir"
            );
        }
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(limits.clone())
                .app_data(metrics.clone())
                .app_data(api_limit)
                .app_data(body_timeout)
                .app_data(proxy_trust.clone())
                .into_utoipa_app()
                .service(http::api::scope())
                .into_app()
                .configure(|cfg| http::configure(cfg, &static_dir))
                .default_service(web::to(http::problem::not_found))
                .wrap(actix_web::middleware::from_fn(http::observe::observe))
        })
        .shutdown_timeout(10)
        .disable_signals()
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(server.run())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> Arc<Services> {
        self.services.clone()
    }

    /// Serves until SIGINT/SIGTERM. Then live streams end and the scheduler stops claiming
    /// (its deliveries in flight end), the HTTP server finishes the requests it has, and
    /// the statistics the instance holds back are written.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (handle, shutdown) = (self.server.handle(), self.shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop_signal() => tracing::info!("stopping: finishing requests and deliveries in flight"),
                _ = shutdown.cancelled() => {}
            }
            shutdown.cancel();
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.shutdown.cancel();
        let _ = self.scheduler.await;
        if let Err(e) = self.services.store.flush_stats().await {
            tracing::error!(error = %e, "the statistics of the last second could not be written");
        }
        tracing::info!("stopped");
        result
    }
}
