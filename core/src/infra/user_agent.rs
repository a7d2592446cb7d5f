//! People-readable summaries of a User-Agent header ("Chrome on Linux"), for the
//! sessions list and account notifications: a summary for people, not a parser.

/// "Chrome on Linux" from a User-Agent header (a summary for people, not a parser).
pub fn describe_browser(ua: Option<&str>) -> String {
    let Some(ua) = ua.filter(|u| !u.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => format!("A browser on {o}"),
        // Not the raw header: it is the sender's own text, and it would show up in the
        // owner's mail and session list as if Keyward had recognised it.
        (None, None) => "Unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn browser_summaries() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_browser(Some(chrome)), "Chrome on Linux");
        assert_eq!(
            describe_browser(Some(
                "Mozilla/5.0 (Windows NT 10.0; rv:140.0) Gecko/20100101 Firefox/140.0"
            )),
            "Firefox on Windows"
        );
        assert_eq!(describe_browser(Some("curl/8.5.0")), "curl");
        assert_eq!(describe_browser(None), "Unknown browser");
        assert_eq!(
            describe_browser(Some("Your administrator (scheduled audit) - expected")),
            "Unknown browser"
        );
    }
}
