//! A portal link's look (issue 14): the platform's primary colour, logo,
//! font and colour mode, and whether the header shows (hidden when the
//! platform frames the portal under its own). Given with
//! `app-portal-access`, carried in the signed link and then in the session
//! cookie (no store column), and applied by the portal as CSS variables
//! (`/portal/assets/theme.css`). Every value is checked here so that none can
//! carry CSS or HTML of its own: a colour is `#rgb` or `#rrggbb`, a logo an
//! `https` URL, a font a list of family names of letters, digits, spaces
//! and hyphens.

use serde::{Deserialize, Serialize};

use super::Error;

/// The longest logo URL and font list accepted.
const MAX_URL: usize = 2048;
const MAX_FONT: usize = 200;

/// The look of one link's portal, checked.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Theme {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_family: Option<String>,
    /// `light`, `dark`, or `auto` (none: the reader's preference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hide_header: bool,
}

/// `theme` as `app-portal-access` takes it, before it is checked.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThemeIn {
    /// A CSS hex colour (`#RGB` or `#RRGGBB`) for buttons and links in the
    /// light palette.
    #[serde(default)]
    #[schema(example = "#0a7d55")]
    primary_color: Option<String>,
    /// An `https` URL of the logo shown in the header.
    #[serde(default)]
    logo_url: Option<String>,
    /// Font family names: letters, digits, spaces and hyphens, comma-separated.
    #[serde(default)]
    font_family: Option<String>,
    /// `light`, `dark` or `auto`.
    #[serde(default)]
    mode: Option<String>,
}

impl Theme {
    /// Checks `theme` and `hideHeader`; an error names the field.
    pub fn parse(input: Option<ThemeIn>, hide_header: bool) -> Result<Option<Theme>, Error> {
        if input.is_none() && !hide_header {
            return Ok(None);
        }
        let input = input.unwrap_or_default();
        let field = |name: &str, msg: &str| Error::field(&["theme", name], msg);
        if let Some(c) = &input.primary_color {
            if !is_hex_colour(c) {
                return Err(field(
                    "primaryColor",
                    "must be a CSS hex colour such as #4338ca or #43c",
                ));
            }
        }
        if let Some(u) = &input.logo_url {
            let ok = u.len() <= MAX_URL
                && url::Url::parse(u)
                    .is_ok_and(|p| p.scheme() == "https" && p.host_str().is_some());
            if !ok || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(field(
                    "logoUrl",
                    "must be an https:// URL of at most 2048 characters",
                ));
            }
        }
        if let Some(f) = &input.font_family {
            if font_stack(f).is_none() {
                return Err(field(
                    "fontFamily",
                    "must be font family names separated by commas, each of letters, digits, spaces and hyphens (at most 200 characters)",
                ));
            }
        }
        if let Some(m) = &input.mode {
            if !matches!(m.as_str(), "light" | "dark" | "auto") {
                return Err(field("mode", "must be one of light, dark, auto"));
            }
        }
        Ok(Some(Theme {
            primary_color: input.primary_color.map(|c| c.to_ascii_lowercase()),
            logo_url: input.logo_url,
            font_family: input.font_family,
            mode: input.mode.filter(|m| m != "auto"),
            hide_header,
        }))
    }

    /// The style sheet that applies this theme over `portal.css`. Every value
    /// in it was checked by [`Theme::parse`] (and is checked again here: a
    /// session cookie is signed, but the rule costs nothing).
    pub fn css(&self) -> String {
        let mut css = String::new();
        if let Some(c) = self.primary_color.as_deref().filter(|c| is_hex_colour(c)) {
            let text = if is_light(c) { "#0f1216" } else { "#ffffff" };
            // The colour is for the light palette, where the platform chose
            // it; the dark palette keeps its own accent, which contrasts
            // with a dark background whatever the platform's colour. Three
            // `:root`s outweigh portal.css's `data-mode` rules.
            let vars = format!("--accent: {c}; --accent-text: {text};");
            css.push_str(&format!(
                ":root:root:root[data-mode=\"light\"] {{ {vars} }}\n\
                 @media (prefers-color-scheme: light) {{ :root:root:root:not([data-mode=\"dark\"]) {{ {vars} }} }}\n"
            ));
        }
        if let Some(stack) = self.font_family.as_deref().and_then(font_stack) {
            css.push_str(&format!("body {{ font-family: {stack}; }}\n"));
        }
        css
    }
}

fn is_hex_colour(c: &str) -> bool {
    let Some(hex) = c.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether dark text reads better than white on colour `c` (`#rgb` or
/// `#rrggbb`), by WCAG relative luminance.
fn is_light(c: &str) -> bool {
    let hex = &c[1..];
    let channel = |i: usize| -> f64 {
        let v = if hex.len() == 3 {
            u8::from_str_radix(&hex[i..=i].repeat(2), 16)
        } else {
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
        }
        .unwrap_or(0);
        let s = f64::from(v) / 255.0;
        if s <= 0.03928 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
    // Contrast with white below 4.5:1 means black text contrasts more.
    1.05 / (l + 0.05) < 4.5
}

/// A font list as CSS: generic families as keywords, other names quoted,
/// always ending in `system-ui, sans-serif`; `None` if a name has anything
/// but letters, digits, spaces and hyphens.
fn font_stack(list: &str) -> Option<String> {
    const GENERIC: [&str; 6] = [
        "serif",
        "sans-serif",
        "monospace",
        "system-ui",
        "cursive",
        "ui-rounded",
    ];
    if list.len() > MAX_FONT {
        return None;
    }
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim) {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
        if !ok {
            return None;
        }
        if GENERIC.contains(&name.to_ascii_lowercase().as_str()) {
            out.push(name.to_ascii_lowercase());
        } else {
            out.push(format!("\"{name}\""));
        }
    }
    out.push("system-ui, sans-serif".into());
    Some(out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theme(json: serde_json::Value) -> Result<Option<Theme>, Error> {
        Theme::parse(Some(serde_json::from_value(json).unwrap()), false)
    }

    #[test]
    fn good_values_are_kept_and_become_css() {
        let t = theme(serde_json::json!({
            "primaryColor": "#0A7C4B", "logoUrl": "https://cdn.spot.example/logo.svg",
            "fontFamily": "Inter, sans-serif", "mode": "dark"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(t.primary_color.as_deref(), Some("#0a7c4b"));
        assert_eq!(t.mode.as_deref(), Some("dark"));
        let css = t.css();
        assert!(
            css.contains("--accent: #0a7c4b; --accent-text: #ffffff;"),
            "{css}"
        );
        assert!(
            css.contains("font-family: \"Inter\", sans-serif, system-ui, sans-serif;"),
            "{css}"
        );
        assert_eq!(
            theme(serde_json::json!({"mode": "auto"}))
                .unwrap()
                .unwrap()
                .mode,
            None
        );
        assert!(theme(serde_json::json!({"primaryColor": "#ff0"}))
            .unwrap()
            .unwrap()
            .css()
            .contains("--accent-text: #0f1216"));
        assert_eq!(Theme::parse(None, false).unwrap(), None);
        assert!(Theme::parse(None, true).unwrap().unwrap().hide_header);
    }

    #[test]
    fn values_that_could_carry_css_or_html_are_refused() {
        for (field, bad) in [
            ("primaryColor", "red"),
            ("primaryColor", "#12345"),
            ("primaryColor", "#123; } body { display: none"),
            ("logoUrl", "http://cdn.spot.example/logo.svg"),
            ("logoUrl", "javascript:alert(1)"),
            ("logoUrl", "https://x.example/a b"),
            ("fontFamily", "Inter; } * { color: red"),
            ("fontFamily", "\"Inter\""),
            ("fontFamily", "url(https://x.example/f)"),
            ("fontFamily", "Inter,,serif"),
            ("mode", "sepia"),
        ] {
            let err = theme(serde_json::json!({ field: bad })).unwrap_err();
            let text = format!("{err:?}");
            assert!(text.contains(field), "{field} {bad}: {text}");
        }
    }
}
