//! Times in the viewer's own time zone.
//!
//! The browser knows its zone; the server does not. Once the page's script has run, it
//! remembers the browser's zone (its IANA name, e.g. `Europe/Istanbul`) in a plain
//! cookie, and the server draws every later page in that zone, so server-rendered and
//! browser-rendered times agree and pages stay local without JavaScript too. Before
//! that (a first visit, a browser that never ran the script) times are UTC. Every time
//! shown names its offset (`UTC+3`), so a reader never has to guess which it is.
//!
//! The cookie is the viewer's own preference, not a credential: a forged or hostile
//! value changes only how the sender's own page is drawn, and anything but a known zone
//! name reads as UTC (names are looked up in the time-zone database bundled with the
//! binary, never as a path on disk).

/// The cookie that carries the browser's time zone name.
pub const COOKIE: &str = "kw_tz";

/// Whether `name` has the shape of an IANA zone name (`Area/Location`, `UTC`,
/// `Etc/GMT+3`): letters, digits, `/ _ + -`, at most 64 characters, no `..`.
pub fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('/')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
}

/// How an offset from UTC is written after a time: `UTC`, `UTC+3`, `UTC-4`, `UTC+5:30`.
pub fn offset_label(seconds_east: i32) -> String {
    if seconds_east == 0 {
        return "UTC".to_owned();
    }
    let sign = if seconds_east < 0 { '-' } else { '+' };
    let all = seconds_east.unsigned_abs();
    let (h, m, s) = (all / 3600, all / 60 % 60, all % 60);
    // Seconds only for the historic local mean times that had them (Monrovia until
    // 1972 was UTC-0:44:30).
    match (m, s) {
        (0, 0) => format!("UTC{sign}{h}"),
        (m, 0) => format!("UTC{sign}{h}:{m:02}"),
        (m, s) => format!("UTC{sign}{h}:{m:02}:{s:02}"),
    }
}

/// The viewer's offset from UTC at the instant `unix`, in seconds east (daylight saving
/// time included): the browser's own zone in the browser, the remembered zone on the
/// server (0 when none is known).
pub fn offset_at(unix: i64) -> i32 {
    imp::offset_at(unix)
}

#[cfg(feature = "hydrate")]
mod imp {
    use wasm_bindgen::JsValue;

    pub fn offset_at(unix: i64) -> i32 {
        let date = js_sys::Date::new(&JsValue::from_f64(unix as f64 * 1000.0));
        let minutes_west = date.get_timezone_offset();
        if minutes_west.is_finite() {
            -(minutes_west as i32) * 60
        } else {
            0
        }
    }

    /// The browser's zone name (`Intl`), if it has a plausible one.
    fn browser_zone() -> Option<String> {
        let format =
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
        let options = format.resolved_options();
        let name = js_sys::Reflect::get(&options, &JsValue::from_str("timeZone"))
            .ok()?
            .as_string()?;
        super::plausible_name(&name).then_some(name)
    }

    /// Remembers the browser's zone for the server's next pages (a year; renewed on
    /// every visit, so a laptop that travels follows).
    pub fn remember_browser_zone() {
        use wasm_bindgen::JsCast as _;
        let Some(name) = browser_zone() else { return };
        let document = leptos::prelude::document();
        let Ok(html) = document.dyn_into::<web_sys::HtmlDocument>() else {
            return;
        };
        let wanted = format!("{}={name}", super::COOKIE);
        if html
            .cookie()
            .is_ok_and(|all| all.split(';').any(|c| c.trim() == wanted))
        {
            return;
        }
        let secure = leptos::prelude::window()
            .location()
            .protocol()
            .is_ok_and(|p| p == "https:");
        let _ = html.set_cookie(&format!(
            "{wanted}; Path=/; Max-Age=31536000; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        ));
    }
}

#[cfg(feature = "hydrate")]
pub use imp::remember_browser_zone;

#[cfg(not(feature = "hydrate"))]
mod imp {
    pub fn offset_at(unix: i64) -> i32 {
        #[cfg(feature = "ssr")]
        if let Some(zone) = leptos::prelude::use_context::<super::ViewerZone>() {
            if let Ok(t) = jiff::Timestamp::from_second(unix) {
                return zone.0.to_offset(t).seconds();
            }
        }
        let _ = unix;
        0
    }
}

/// The zone a page is drawn in on the server (from the request's cookie).
#[cfg(feature = "ssr")]
#[derive(Clone, Debug)]
pub struct ViewerZone(pub jiff::tz::TimeZone);

#[cfg(feature = "ssr")]
impl ViewerZone {
    /// The zone the request's `kw_tz` cookie names, if it is a known zone (the first
    /// known one when the cookie comes more than once).
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        crate::auth::ssr::cookie_values(headers, COOKIE).find_map(Self::named)
    }

    /// A known zone by its IANA name.
    pub fn named(name: &str) -> Option<Self> {
        if !plausible_name(name) {
            return None;
        }
        jiff::tz::db().get(name).ok().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_offset() {
        assert_eq!(offset_label(0), "UTC");
        assert_eq!(offset_label(3 * 3600), "UTC+3");
        assert_eq!(offset_label(-4 * 3600), "UTC-4");
        assert_eq!(offset_label(5 * 3600 + 1800), "UTC+5:30");
        assert_eq!(offset_label(-(44 * 60 + 30)), "UTC-0:44:30");
        assert_eq!(offset_label(-(9 * 3600 + 1800)), "UTC-9:30");
    }

    #[test]
    fn only_zone_shaped_names_are_looked_up() {
        assert!(plausible_name("Europe/Istanbul"));
        assert!(plausible_name("America/Argentina/Buenos_Aires"));
        assert!(plausible_name("Etc/GMT+3"));
        for hostile in [
            "",
            "../../etc/passwd",
            "/etc/localtime",
            "Europe/Ist anbul",
            "a\"b",
            &"A".repeat(65),
        ] {
            assert!(!plausible_name(hostile), "{hostile:?}");
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_server_draws_in_the_remembered_zone() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=b; kw_tz=America/New_York".parse().unwrap(),
        );
        let zone = ViewerZone::from_headers(&headers).expect("a known zone");
        let offset = |unix: i64| {
            zone.0
                .to_offset(jiff::Timestamp::from_second(unix).unwrap())
                .seconds()
        };
        // Daylight saving time is the zone's: -4 in July, -5 in January.
        assert_eq!(offset(1_783_000_000), -4 * 3600); // 2026-07-02
        assert_eq!(offset(1_767_000_000), -5 * 3600); // 2025-12-29
                                                      // Sent twice, a made-up copy first: the known zone is taken.
        let mut twice = http::HeaderMap::new();
        twice.insert(
            http::header::COOKIE,
            "kw_tz=bogus; kw_tz=Asia/Tokyo".parse().unwrap(),
        );
        assert_eq!(
            ViewerZone::from_headers(&twice).map(|z| z.0.iana_name().map(str::to_owned)),
            Some(Some("Asia/Tokyo".to_owned()))
        );
        for unknown in ["Mars/Olympus_Mons", "../../../etc/passwd", "UTC;x"] {
            assert!(ViewerZone::named(unknown).is_none(), "{unknown}");
        }
    }
}
