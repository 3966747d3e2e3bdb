//! Many distinct browsers, as a real site sends them: visitor ids signed the way footfall
//! signs them (footfall's own signer, keyed with the configured master key and scoped to
//! the account), and user agents drawn from a realistic mix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use footfall::domain::ids::AccountId;
use footfall::domain::visitor::{VisitorId, VisitorSigner};
use rand::{Rng, SeedableRng};

/// Signs visitor ids for one account with a footfall's `[cookies] keys[0]` and `name`.
pub struct Signer {
    signer: VisitorSigner,
    account: AccountId,
}

impl Signer {
    pub fn new(key_base64: &str, cookie_name: &str, account: u64) -> anyhow::Result<Self> {
        let signer = VisitorSigner::from_base64_keys(&[key_base64.to_owned()], cookie_name)
            .map_err(|e| anyhow::anyhow!("the cookie key: {e:?}"))?;
        Ok(Self {
            signer,
            account: AccountId(account),
        })
    }

    /// A new visitor id (16 random bytes, 22 characters) and its signed value.
    pub fn mint(&self, rng: &mut impl Rng) -> String {
        let raw = URL_SAFE_NO_PAD.encode(rng.random::<[u8; 16]>());
        VisitorId::parse(&raw)
            .map(|id| self.signer.sign(self.account, id))
            .unwrap_or_default()
    }
}

/// One family of user agents and its share of page views (in percent), roughly as
/// public browser statistics give them (StatCounter, 2025: Chrome about two thirds,
/// Safari a fifth, Edge, Firefox and Samsung Internet the rest), plus crawlers and
/// headless browsers, which footfall must recognise and drop.
const MIX: &[(u32, Family)] = &[
    (27, Family::ChromeDesktop),
    (25, Family::ChromeAndroid),
    (16, Family::SafariIos),
    (5, Family::SafariMac),
    (2, Family::ChromeIos),
    (7, Family::Edge),
    (6, Family::Firefox),
    (1, Family::FirefoxAndroid),
    (3, Family::Samsung),
    (1, Family::Opera),
    (4, Family::Bot),
    (3, Family::Headless),
];

#[derive(Clone, Copy)]
enum Family {
    ChromeDesktop,
    ChromeAndroid,
    SafariIos,
    SafariMac,
    ChromeIos,
    Edge,
    Firefox,
    FirefoxAndroid,
    Samsung,
    Opera,
    Bot,
    Headless,
}

const DESKTOPS: &[&str] = &[
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "X11; Linux x86_64",
    "X11; CrOS x86_64 14541.0.0",
    "Windows NT 10.0; WOW64",
];
const ANDROIDS: &[&str] = &[
    "Linux; Android 10; K",
    "Linux; Android 14; SM-S921B",
    "Linux; Android 13; SM-A536B",
    "Linux; Android 14; Pixel 8",
    "Linux; Android 12; M2101K6G",
    "Linux; Android 11; moto g(30)",
    "Linux; Android 15; Pixel 9 Pro",
];
const IPHONES: &[&str] = &["iPhone", "iPad"];
const BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{M}.0.{B}.{P} Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.{P}; +https://openai.com/gptbot)",
];

fn pick<'a>(rng: &mut impl Rng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// One user agent of a family, with the version numbers real ones carry (a major
/// version, a build and a patch number), so that a hundred thousand of them are mostly
/// distinct strings, as a real site's are.
fn user_agent(rng: &mut impl Rng, family: Family) -> String {
    let major = rng.random_range(118..=133);
    let build = rng.random_range(5000..7000);
    let patch = rng.random_range(0..250);
    let ios = format!("{}_{}", rng.random_range(15..=18), rng.random_range(0..7));
    match family {
        Family::ChromeDesktop => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{patch} Safari/537.36",
            pick(rng, DESKTOPS)
        ),
        Family::ChromeAndroid => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{patch} Mobile Safari/537.36",
            pick(rng, ANDROIDS)
        ),
        Family::SafariIos => {
            let device = pick(rng, IPHONES);
            format!(
                "Mozilla/5.0 ({device}; CPU {} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Mobile/15E148 Safari/604.1",
                if device == "iPad" {
                    format!("OS {ios}")
                } else {
                    format!("iPhone OS {ios}")
                },
                &ios[..2],
                rng.random_range(0..7)
            )
        }
        Family::SafariMac => format!(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{}.{} Safari/605.1.15",
            rng.random_range(15..=18),
            rng.random_range(0..7),
            rng.random_range(0..3)
        ),
        Family::ChromeIos => format!(
            "Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{major}.0.{build}.{patch} Mobile/15E148 Safari/604.1"
        ),
        Family::Edge => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36 Edg/{major}.0.{}.{patch}",
            pick(rng, &DESKTOPS[..2]),
            rng.random_range(2000..3200)
        ),
        Family::Firefox => {
            let v = rng.random_range(115..=134);
            let os = pick(rng, DESKTOPS).replace("; Win64; x64", "; Win64; x64; rv:");
            let os = if os.ends_with("rv:") {
                format!("{os}{v}.0")
            } else {
                format!("{os}; rv:{v}.0")
            };
            format!(
                "Mozilla/5.0 ({os}) Gecko/20100101 Firefox/{v}.0.{}",
                patch % 4
            )
        }
        Family::FirefoxAndroid => {
            let v = rng.random_range(115..=134);
            format!("Mozilla/5.0 (Android 14; Mobile; rv:{v}.0) Gecko/{v}.0 Firefox/{v}.0")
        }
        Family::Samsung => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{}.{} Chrome/{major}.0.{build}.{patch} Mobile Safari/537.36",
            pick(rng, ANDROIDS),
            rng.random_range(20..=27),
            rng.random_range(0..3)
        ),
        Family::Opera => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36 OPR/{}.0.{}.{patch}",
            pick(rng, DESKTOPS),
            major - 15,
            rng.random_range(4000..5000)
        ),
        Family::Bot => pick(rng, BOTS)
            .replace("{M}", &major.to_string())
            .replace("{B}", &build.to_string())
            .replace("{P}", &patch.to_string()),
        Family::Headless => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{major}.0.{build}.{patch} Safari/537.36",
            pick(rng, DESKTOPS)
        ),
    }
}

/// `n` user agents drawn from the mix (the same ones for the same seed), and how many
/// of them are crawlers or headless browsers.
pub fn user_agents(n: usize, seed: u64) -> (Vec<String>, usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total: u32 = MIX.iter().map(|(w, _)| w).sum();
    let mut bots = 0;
    let agents = (0..n)
        .map(|_| {
            let mut roll = rng.random_range(0..total);
            let family = MIX
                .iter()
                .find(|(w, _)| {
                    if roll < *w {
                        return true;
                    }
                    roll -= w;
                    false
                })
                .map(|(_, f)| *f)
                .unwrap_or(Family::ChromeDesktop);
            if matches!(family, Family::Bot | Family::Headless) {
                bots += 1;
            }
            user_agent(&mut rng, family)
        })
        .collect();
    (agents, bots)
}
