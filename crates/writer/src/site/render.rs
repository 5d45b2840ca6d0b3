//! The HTML of [`SiteModel`]: one self-contained page (inline CSS and JS, no external
//! assets), so it works from a file:// URL and from any static host.
//!
//! Everything shown comes from metadata (role names, target names, key types are
//! attacker-influenced): all text goes through [`escape_html`], and the search index embedded
//! in a `<script>` element goes through [`json_for_script`].

use std::fmt::Write as _;

use serde_json::json;
use time::OffsetDateTime;

use super::{Expiry, NowState, SiteModel};

const CSS: &str = include_str!("site.css");
const JS: &str = include_str!("site.js");

/// `s` with `& < > " '` replaced by entities: safe in element text and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that is safe inside a `<script>` element: `<`, `>` and `&` are written as
/// `\u003c`, `\u003e`, `\u0026` (so no `</script>` or `<!--` can end the element), and the
/// line separators U+2028 and U+2029 as escapes.
pub fn json_for_script(value: &serde_json::Value) -> String {
    let s = value.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn date(t: OffsetDateTime) -> String {
    ocituf_tuf::metadata::expires_format::format(t).unwrap_or_else(|_| t.to_string())
}

/// "in 3d 4h" / "2d 1h ago".
fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let secs = d.whole_seconds().unsigned_abs();
    let (days, hours, mins) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    let span = if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else {
        format!("{mins}m")
    };
    if d.is_negative() {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

fn expiry_cell(
    expires: Option<OffsetDateTime>,
    expiry: Option<Expiry>,
    now: OffsetDateTime,
) -> String {
    match (expires, expiry) {
        (Some(e), Some(x)) => {
            let badge = match x {
                Expiry::Ok => String::new(),
                Expiry::Soon => " <span class=\"badge warn\">expires soon</span>".to_owned(),
                Expiry::Expired => " <span class=\"badge bad\">EXPIRED</span>".to_owned(),
            };
            format!(
                "<time datetime=\"{d}\">{d}</time> <span class=\"muted\">({r})</span>{badge}",
                d = escape_html(&date(e)),
                r = escape_html(&relative(e, now)),
            )
        }
        _ => "<span class=\"muted\">no version yet</span>".to_owned(),
    }
}

/// The search index: one entry per role, key, image and pending root.
fn index(m: &SiteModel) -> serde_json::Value {
    let mut items = Vec::new();
    for r in &m.roles {
        items.push(json!({"kind": "role", "title": r.name, "detail": format!("delegated by {}", r.delegator), "href": format!("#role-{}", anchor(&r.name))}));
    }
    for k in &m.keys {
        items.push(json!({"kind": "key", "title": k.keyid, "detail": format!("{} key of {}", k.keytype, k.roles.join(", ")), "href": "#keys"}));
    }
    for i in &m.images {
        items.push(json!({"kind": "image", "title": i.name, "detail": format!("{} · signed by {} · {}", i.digest, i.role, i.now.label()), "href": format!("#image-{}", anchor(&i.name))}));
    }
    for p in &m.pending {
        items.push(json!({"kind": "pending root", "title": format!("root version {}", p.version), "detail": p.content, "href": "#pending"}));
    }
    for p in &m.pending_targets {
        items.push(json!({"kind": "pending version", "title": format!("{} version {}", p.role, p.version), "detail": p.content, "href": "#pending"}));
    }
    json!(items)
}

/// The search index as pretty JSON (written next to the page as `index.json`).
pub fn index_json(m: &SiteModel) -> String {
    serde_json::to_string_pretty(&index(m)).unwrap_or_default()
}

/// An id for `name`: its bytes in hex (ids must not carry attacker-chosen characters).
fn anchor(name: &str) -> String {
    hex::encode(name.as_bytes())
}

/// The page of `m`.
pub fn render(m: &SiteModel) -> String {
    let now = m.generated;
    let e = escape_html;
    let mut h = String::new();
    let expired = m
        .roles
        .iter()
        .filter(|r| r.expiry == Some(Expiry::Expired))
        .count();
    let soon = m
        .roles
        .iter()
        .filter(|r| r.expiry == Some(Expiry::Soon))
        .count();
    let moved = m
        .images
        .iter()
        .filter(|i| matches!(i.now, NowState::Moved(_) | NowState::Missing))
        .count();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
<title>{name} · ocituf root of trust</title><style>{CSS}</style></head><body>\
<header><div class=\"wrap\"><h1>Root of trust <code>{name}</code></h1>\
<p class=\"muted\">in <code>{repo}</code> · built {gen} from verified metadata only (root chain from the pinned root)</p>\
<input id=\"search\" type=\"search\" placeholder=\"Search images, roles, keys…\" autocomplete=\"off\" aria-label=\"Search\">\
<ul id=\"results\" hidden></ul>\
<nav><a href=\"#roles\">Roles</a><a href=\"#images\">Images</a><a href=\"#keys\">Keys</a><a href=\"#pending\">Pending</a><a href=\"#history\">History</a></nav>\
</div></header><main class=\"wrap\">",
        name = e(&m.name),
        repo = e(&m.repository),
        gen = e(&date(now)),
    );
    let _ = write!(
        h,
        "<section class=\"cards\">\
<div class=\"card\"><b>{}</b><span>roles</span></div>\
<div class=\"card\"><b>{}</b><span>signed images</span></div>\
<div class=\"card{}\" id=\"summary-expiry\"><b>{}</b><span>expired · {} expiring within {}d</span></div>\
<div class=\"card{}\" id=\"summary-moved\"><b>{}</b><span>tags no longer signed</span></div>\
<div class=\"card\"><b>{}</b><span>versions waiting for signatures</span></div></section>",
        m.roles.len(),
        m.images.len(),
        if expired > 0 {
            " bad"
        } else if soon > 0 {
            " warn"
        } else {
            ""
        },
        expired,
        soon,
        m.warn_within.whole_days(),
        if moved > 0 { " bad" } else { "" },
        moved,
        m.pending.len() + m.pending_targets.len(),
    );
    roles_section(&mut h, m);
    images_section(&mut h, m);
    keys_section(&mut h, m);
    pending_section(&mut h, m);
    history_section(&mut h, m);
    let _ = write!(
        h,
        "</main><footer class=\"wrap muted small\">Generated by <code>ocituf site</code>. A page is a view, not a verification: clients verify with <code>ocituf verify</code>.</footer>\
<script type=\"application/json\" id=\"index\">{}</script><script>{JS}</script></body></html>",
        json_for_script(&index(m)),
    );
    h.push('\n');
    h
}

fn roles_section(h: &mut String, m: &SiteModel) {
    let now = m.generated;
    let e = escape_html;
    h.push_str("<section id=\"roles\"><h2>Roles</h2><table><thead><tr><th>role</th><th>delegated by</th><th>version</th><th>expires</th><th>threshold</th><th>keys</th><th>targets</th></tr></thead><tbody>");
    for r in &m.roles {
        let keys: Vec<String> = r
            .keyids
            .iter()
            .map(|k| format!("<code title=\"{}\">{}</code>", e(k), e(short(k))))
            .collect();
        let paths = r.paths.as_ref().map_or(String::new(), |p| {
            format!(
                "<div class=\"muted small\">paths: {}</div>",
                p.iter()
                    .map(|p| format!("<code>{}</code>", e(p)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        });
        let _ = write!(
            *h,
            "<tr id=\"role-{id}\" data-role=\"{n}\" data-expiry=\"{x}\"><td><b>{n}</b>{paths}</td><td>{by}</td><td>{v}</td><td>{exp}</td><td>{t} of {k}</td><td>{keys}</td><td>{c}</td></tr>",
            id = anchor(&r.name),
            n = e(&r.name),
            x = r.expiry.map_or("none", Expiry::as_str),
            by = e(&r.delegator),
            v = r.version.map_or("–".to_owned(), |v| v.to_string()),
            exp = expiry_cell(r.expires, r.expiry, now),
            t = r.threshold,
            k = r.keyids.len(),
            keys = keys.join(" "),
            c = r.targets,
        );
    }
    h.push_str("</tbody></table></section>");
}

fn images_section(h: &mut String, m: &SiteModel) {
    let e = escape_html;
    h.push_str("<section id=\"images\"><h2>Signed images</h2><p class=\"muted\">“Verified now” asks the registry where each tag points today: a tag moved after signing is NOT signed.</p><table class=\"fixed\"><colgroup><col style=\"width:34%\"><col style=\"width:36%\"><col style=\"width:10%\"><col style=\"width:20%\"></colgroup><thead><tr><th>image</th><th>signed digest</th><th>signed by</th><th>verified now</th></tr></thead><tbody>");
    if m.images.is_empty() {
        h.push_str("<tr><td colspan=\"4\" class=\"muted\">no signed images yet</td></tr>");
    }
    for i in &m.images {
        let (class, now_state, extra) = match &i.now {
            NowState::Signed => ("ok", "signed", String::new()),
            NowState::Moved(d) => (
                "bad",
                "moved",
                format!(
                    "<div class=\"small\">registry now serves <code class=\"digest\">{}</code></div>",
                    e(d)
                ),
            ),
            NowState::Missing => ("bad", "missing", String::new()),
            NowState::NotATag => ("muted", "digest", String::new()),
            NowState::Unknown(why) => (
                "warn",
                "unknown",
                format!("<div class=\"small muted\">{}</div>", e(why)),
            ),
        };
        let _ = write!(
            *h,
            "<tr id=\"image-{id}\" data-image=\"{n}\" data-now=\"{now_state}\"><td><code class=\"digest\">{n}</code>{mt}</td><td><code class=\"digest\">{d}</code></td><td>{r}</td><td><span class=\"badge {class}\">{label}</span>{extra}</td></tr>",
            id = anchor(&i.name),
            n = e(&i.name),
            mt = i.media_type.as_ref().map_or(String::new(), |t| format!("<div class=\"muted small\">{}</div>", e(t))),
            d = e(&i.digest),
            r = e(&i.role),
            label = e(i.now.label()),
        );
    }
    h.push_str("</tbody></table></section>");
}

fn keys_section(h: &mut String, m: &SiteModel) {
    let e = escape_html;
    h.push_str("<section id=\"keys\"><h2>Keys</h2><table><thead><tr><th>key id</th><th>type</th><th>scheme</th><th>signs for</th></tr></thead><tbody>");
    for k in &m.keys {
        let _ = write!(
            *h,
            "<tr><td><code class=\"digest\">{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&k.keyid),
            e(&k.keytype),
            e(&k.scheme),
            e(&k.roles.join(", "))
        );
    }
    h.push_str("</tbody></table></section>");
}

fn pending_section(h: &mut String, m: &SiteModel) {
    let e = escape_html;
    h.push_str("<section id=\"pending\"><h2>Pending signatures</h2>");
    if m.pending.is_empty() {
        h.push_str("<p class=\"muted\">No root version waits for signatures.</p>");
    } else {
        h.push_str("<p class=\"muted\">Not trusted until signed by both thresholds; co-sign with <code>ocituf root sign --expect CONTENT</code>.</p><table><thead><tr><th>root version</th><th>content</th><th>old root keys</th><th>new root keys</th></tr></thead><tbody>");
        for p in &m.pending {
            let _ = write!(
                *h,
                "<tr data-pending=\"{v}\"><td>{v}</td><td><code class=\"digest\">{c}</code></td><td>{so} of {ot} needed</td><td>{sn} of {nt} needed</td></tr>",
                v = p.version,
                c = e(&p.content),
                so = p.signed_by_old,
                ot = p.old_threshold,
                sn = p.signed_by_new,
                nt = p.new_threshold,
            );
        }
        h.push_str("</tbody></table>");
    }
    if m.pending_targets.is_empty() {
        h.push_str("<p class=\"muted\">No targets role version waits for signatures.</p>");
    } else {
        h.push_str("<p class=\"muted\">Targets versions waiting for maintainers: not trusted until their threshold is met; co-sign with <code>ocituf cosign --role ROLE --expect CONTENT</code>.</p><table><thead><tr><th>role</th><th>version</th><th>content</th><th>signatures</th></tr></thead><tbody>");
        for p in &m.pending_targets {
            let _ = write!(
                *h,
                "<tr data-pending-role=\"{r}\"><td>{r}</td><td>{v}</td><td><code class=\"digest\">{c}</code></td><td>{s} of {t} needed</td></tr>",
                r = e(&p.role),
                v = p.version,
                c = e(&p.content),
                s = p.signatures,
                t = p.threshold,
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
}

fn history_section(h: &mut String, m: &SiteModel) {
    let e = escape_html;
    h.push_str("<section id=\"history\"><h2>History of versions</h2><table><thead><tr><th>role</th><th>version</th><th>expires</th><th>manifest</th></tr></thead><tbody>");
    for v in &m.history {
        let _ = write!(
            *h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code class=\"digest\">{}</code></td></tr>",
            e(&v.role),
            v.version,
            v.expires.map_or("–".to_owned(), |t| e(&date(t))),
            e(&v.manifest),
        );
    }
    h.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"name": "</script><script>alert(1)</script><!--"});
        let s = json_for_script(&v);
        assert!(!s.contains("</"), "{s}");
        assert!(!s.contains("<!--"), "{s}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn html_escaping_covers_attribute_quotes() {
        assert_eq!(
            escape_html("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }
}
