//! Bots by their user agent: crawlers, link previews, monitors, headless browsers and
//! HTTP libraries are not people, and their page views are not recorded.

/// Substrings of user agents that are not people: crawlers, link previews, monitors,
/// headless browsers and HTTP libraries.
const BOT_MARKERS: [&str; 22] = [
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headlesschrome",
    "phantomjs",
    "lighthouse",
    "preview",
    "facebookexternalhit",
    "embedly",
    "pingdom",
    "uptimerobot",
    "monitor",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "java/",
    "okhttp",
    "wget",
    "libwww",
    "scrapy",
    "prerender",
];

/// The markers as one automaton: a single pass over the user agent, without copying it.
static BOTS: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            // A few dozen short markers: the full DFA is small and the fastest to run.
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(BOT_MARKERS)
            .ok()
    });

/// Whether a user agent is a bot; an empty one counts as a bot (browsers always send one).
pub fn is_bot(user_agent: &str) -> bool {
    if user_agent.trim().is_empty() {
        return true;
    }
    match &*BOTS {
        Some(bots) => bots.is_match(user_agent),
        None => BOT_MARKERS
            .iter()
            .any(|m| user_agent.to_ascii_lowercase().contains(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::is_bot;

    #[test]
    fn crawlers_and_headless_browsers_are_bots_people_are_not() {
        for ua in [
            "",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
            "python-requests/2.31",
            "facebookexternalhit/1.1",
        ] {
            assert!(is_bot(ua), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        ] {
            assert!(!is_bot(ua), "{ua}");
        }
    }
}
