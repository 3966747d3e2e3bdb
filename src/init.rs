//! `footfall init`: writes a production configuration — the shipped `config.toml` with
//! every comment kept, and with a Redis URL, a generated cookie key, one account with a
//! generated API token and the demo off — then prints what to do next and the script tag
//! to paste. It never overwrites a file unless told to (`--force`): the file holds the
//! only copy of the cookie key, and losing it signs every visitor out of their lead.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;
use rand::distr::{Alphanumeric, SampleString};

/// The shipped configuration, the template of the written one.
const TEMPLATE: &str = include_str!("../config.toml");
/// Characters of a generated API token (alphanumeric: about 238 bits).
const TOKEN_CHARS: usize = 40;
/// Bytes of a generated cookie key (the signer needs at least 32).
const COOKIE_KEY_BYTES: usize = 32;
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// The written account's id (the shipped demo's: the demo is off in the written file).
const ACCOUNT_ID: u64 = 30441694;

/// What `footfall init` was given on its command line.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Redis URL, e.g. redis://:password@127.0.0.1:6379/0 (asked when not given).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Where browsers reach footfall, e.g. https://t.shop.example (asked when not given).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// The values that make the shipped configuration a production one.
struct Choices {
    redis_url: String,
    public_url: String,
    bind: String,
    cookie_key: String,
    token: String,
}

/// Runs `footfall init`, writing to `path`.
pub fn run(args: InitArgs, path: &Path) -> anyhow::Result<()> {
    if path.exists() && !args.force {
        bail!(
            "{} exists: footfall init does not overwrite it (its cookie key signs your \
             visitors' ids); pass --force to replace it",
            path.display()
        );
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let redis_url = match args.redis_url {
        Some(url) => url,
        None => ask(&mut input, "Redis URL", DEFAULT_REDIS_URL)?,
    };
    let public_url = match args.public_url {
        Some(url) => url,
        None => ask(
            &mut input,
            "Public URL (where browsers reach footfall)",
            DEFAULT_PUBLIC_URL,
        )?,
    };
    let choices = Choices {
        redis_url: check_url(&redis_url, &["redis", "rediss"], "--redis-url")?,
        public_url: check_url(&public_url, &["http", "https"], "--public-url")?,
        bind: args.bind,
        cookie_key: cookie_key(),
        token: Alphanumeric.sample_string(&mut rand::rng(), TOKEN_CHARS),
    };
    let text = render(&choices)?;
    write_private(path, &text, args.force)
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", next_steps(&choices, path));
    Ok(())
}

fn ask(input: &mut impl BufRead, question: &str, default: &str) -> anyhow::Result<String> {
    eprint!("{question} [{default}]: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    input.read_line(&mut line).context("reading the answer")?;
    let answer = line.trim();
    Ok(if answer.is_empty() { default } else { answer }.to_owned())
}

fn check_url(raw: &str, schemes: &[&str], flag: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    match url::Url::parse(raw) {
        Ok(url) if schemes.contains(&url.scheme()) && url.host_str().is_some() => {
            Ok(raw.trim_end_matches('/').to_owned())
        }
        _ => bail!(
            "{flag}: `{raw}` is not a {} URL with a host",
            schemes.join("/")
        ),
    }
}

fn cookie_key() -> String {
    let mut key = [0u8; COOKIE_KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The shipped configuration with the production values put in. Each replaced line must
/// be there as shipped; a changed `config.toml` fails here (and in the tests), not later.
fn render(c: &Choices) -> anyhow::Result<String> {
    let toml = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let secure = c.public_url.starts_with("https://");
    let replacements = [
        (
            "bind = \"127.0.0.1:8080\"",
            format!("bind = {}", toml(&c.bind)),
        ),
        (
            "public_url = \"http://127.0.0.1:8080\"",
            format!("public_url = {}", toml(&c.public_url)),
        ),
        (
            "redis_url = \"\"",
            format!("redis_url = {}", toml(&c.redis_url)),
        ),
        ("keys = []", format!("keys = [{}]", toml(&c.cookie_key))),
        (
            "secure = true",
            format!(
                "secure = {secure}{}",
                if secure {
                    ""
                } else {
                    "  # the public URL is plain http: browsers drop Secure cookies there"
                }
            ),
        ),
        ("enabled = true", "enabled = false".to_owned()),
    ];
    let mut lines: Vec<String> = TEMPLATE.lines().map(str::to_owned).collect();
    for (shipped, production) in replacements {
        let line = lines
            .iter_mut()
            .find(|l| l.as_str() == shipped)
            .with_context(|| format!("the shipped config.toml has no line `{shipped}`"))?;
        *line = production;
    }
    let mut text = String::from(
        "# Written by `footfall init`. It holds secrets (the cookie key and the API token):\n\
         # keep it readable by footfall's user only.\n",
    );
    text.push_str(&lines.join("\n"));
    text.push_str(&format!(
        "\n[[accounts]]\naccount_id = {ACCOUNT_ID}\nsubdomain = \"main\"\ntoken = {}\n",
        toml(&c.token)
    ));
    Ok(text)
}

/// Writes the file readable by its owner only (it holds the secrets).
fn write_private(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

fn next_steps(c: &Choices, path: &Path) -> String {
    let config = path.display();
    let public = &c.public_url;
    let token = &c.token;
    format!(
        "Wrote {config}: Redis {redis}, a new cookie key, one account (demo off).\n\
         \n\
         API token (the Bearer token of the management API; it is in the file):\n  {token}\n\
         \n\
         Next:\n\
         \x20 1. Check it:      footfall --config {config} check-config\n\
         \x20 2. Run footfall:  footfall --config {config}\n\
         \x20 3. Add your site (its key goes into the script tag):\n\
         \x20    curl -s -X POST {public}/api/v4/sites -H 'Authorization: Bearer {token}' \\\n\
         \x20      -H 'Content-Type: application/json' -d '[{{\"name\":\"My site\",\"url\":\"https://www.example.com\"}}]'\n\
         \x20 4. Paste into every page of the site, with the key from step 3:\n\
         \n\
         <script async src=\"{public}/t.js\" data-site=\"SITE_KEY\"></script>\n",
        redis = c.redis_url,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn choices() -> Choices {
        Choices {
            redis_url: "redis://:pw@10.0.0.5:6379/2".into(),
            public_url: "https://t.shop.example".into(),
            bind: "0.0.0.0:8080".into(),
            cookie_key: cookie_key(),
            token: Alphanumeric.sample_string(&mut rand::rng(), TOKEN_CHARS),
        }
    }

    #[test]
    fn written_config_is_the_shipped_one_with_production_values() {
        let c = choices();
        let text = render(&c).unwrap();
        let doc: footfall::config::Settings = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the written config is a valid configuration");
        assert_eq!(doc.store.redis_url, c.redis_url);
        assert_eq!(doc.server.public_url, "https://t.shop.example");
        assert_eq!(doc.server.bind, "0.0.0.0:8080");
        assert_eq!(doc.cookies.keys[0].expose_secret(), c.cookie_key);
        assert!(doc.cookies.secure);
        assert!(!doc.demo.enabled);
        assert_eq!(doc.accounts[0].token.expose_secret(), c.token);
        // Every comment of the shipped file is kept.
        assert!(text.contains("# Production: redis://[:password@]host:6379[/db]"));
    }

    #[test]
    fn generated_secrets_are_long_and_differ_each_time() {
        let (a, b) = (choices(), choices());
        assert!(a.token.len() >= 32 && a.token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.token, b.token);
        assert_ne!(a.cookie_key, b.cookie_key);
        let key = base64::engine::general_purpose::STANDARD
            .decode(&a.cookie_key)
            .unwrap();
        assert_eq!(key.len(), COOKIE_KEY_BYTES);
    }

    #[test]
    fn plain_http_public_url_turns_secure_cookies_off() {
        let c = Choices {
            public_url: "http://10.0.0.7:8080".into(),
            ..choices()
        };
        assert!(render(&c).unwrap().contains("\nsecure = false  #"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("redis://127.0.0.1:6379/", &["redis"], "--redis-url").is_ok());
        assert!(check_url("http://127.0.0.1:6379", &["redis"], "--redis-url").is_err());
        assert!(check_url("not a url", &["http"], "--public-url").is_err());
    }

    #[test]
    fn empty_answer_takes_the_default() {
        let mut input = std::io::Cursor::new("\n");
        assert_eq!(
            ask(&mut input, "Redis URL", "redis://x:1").unwrap(),
            "redis://x:1"
        );
        let mut input = std::io::Cursor::new("redis://y:2\n");
        assert_eq!(
            ask(&mut input, "Redis URL", "redis://x:1").unwrap(),
            "redis://y:2"
        );
    }
}
