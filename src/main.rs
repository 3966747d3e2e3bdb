//! The `footfall` command: `footfall [serve] [--config PATH]`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use footfall::app::Application;

mod init;

/// mimalloc: a request allocates and frees many small buffers; it halves the allocator's
/// share of a page view's CPU time compared with glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use footfall::config::Settings;

#[derive(Parser)]
#[command(version, about = "Site-visit tracking and digital-pipeline triggers")]
struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Load and check the configuration, then exit.
    CheckConfig,
    /// Print the OpenAPI document of the management API (made from its routes).
    Openapi,
    /// Write a production configuration (to --config, default ./config.toml) and print
    /// the next steps.
    Init(init::InitArgs),
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Init(args)) = cli.command {
        let path = cli.config.unwrap_or_else(|| PathBuf::from("config.toml"));
        return init::run(args, &path);
    }
    if let Some(Command::Openapi) = cli.command {
        println!("{}", footfall::http::api::openapi().to_pretty_json()?);
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref()).context("loading the configuration")?;
    footfall::telemetry::init_logs(settings.server.json_logs);
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("configuration is valid");
            Ok(())
        }
        Command::Openapi | Command::Init(_) => Ok(()),
        Command::Serve => {
            let public_url = settings.server.public_url.clone();
            let app = Application::build(settings)
                .await
                .context("starting footfall")?;
            tracing::info!(port = app.port(), public_url = %public_url, console = %format!("{public_url}/console"), "footfall is listening");
            app.run_until_stopped().await.context("serving")?;
            Ok(())
        }
    }
}
